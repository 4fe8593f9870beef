//! Edge-hub phone-home as a hub and an operator see it, driven through the real clients
//! (`HubClient` with a deploy key, `Client` with the admin key) against a real cloud: idempotent
//! registration, status under the injected clock, the versions-behind warning, license modes,
//! protocol versioning, the audit trail, and a revoked key stopping its hub at the next contact.

mod common;

use mftplus_client::{Client, ClientError, Credential, HubClient};
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_types::hubs::{HubHeartbeatRequest, HubRegisterRequest};
use mftplus_types::ErrorCode;

const LICENSE: &str = "MFT-ENT-0123-4567";

async fn cloud() -> TestCloud {
    let license_hash = mftplus_crypto::sha256_hex(LICENSE.as_bytes());
    TestCloud::spawn_with(TestOptions {
        config_yaml: format!(
            "{}hubs:\n  latest_version: 0.5.0\n  heartbeat_interval_seconds: 60\n  license_keys: [\"{license_hash}\"]\n",
            TestOptions::default().config_yaml
        ),
        ..TestOptions::default()
    })
    .await
}

fn operator(cloud: &TestCloud) -> Client {
    Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap()
}

async fn hub_client(cloud: &TestCloud, label: &str) -> (String, HubClient) {
    let (id, _, hub) = hub_client_with_key(cloud, label).await;
    (id, hub)
}

/// (deploy key id, the key itself, a client using it).
async fn hub_client_with_key(cloud: &TestCloud, label: &str) -> (String, String, HubClient) {
    let created = operator(cloud).create_deploy_key(label).await.unwrap();
    assert!(created.key.starts_with("mft_dep_") && created.key.len() == 48);
    assert_eq!(created.prefix, created.key[..12]);
    let hub = HubClient::new(&format!("{}/api", cloud.url), &created.key).unwrap();
    (created.id, created.key, hub)
}

fn request(hostname: &str, version: &str, license_key: Option<&str>) -> HubRegisterRequest {
    HubRegisterRequest {
        protocol: 1,
        hub_version: version.into(),
        hostname: hostname.into(),
        platform: "linux".into(),
        license_key: license_key.map(str::to_string),
    }
}

fn beat(healthy: bool, issues: &[&str]) -> HubHeartbeatRequest {
    HubHeartbeatRequest {
        hub_version: "0.5.0".into(),
        uptime_seconds: 30,
        healthy,
        issues: issues.iter().map(|i| i.to_string()).collect(),
    }
}

#[tokio::test]
async fn registration_is_idempotent_per_hostname() {
    let cloud = cloud().await;
    let (key_id, key, hub) = hub_client_with_key(&cloud, "jhb-hub-prod").await;
    let first = hub
        .register(&request("hub-server-01", "0.5.0", None))
        .await
        .unwrap();
    assert!(first.hub_id.starts_with("hub_") && first.hub_id.len() == 20);
    assert_eq!(first.heartbeat_interval_seconds, 60);
    assert_eq!(first.latest_version, "0.5.0");
    let again = hub
        .register(&request("hub-server-01", "0.5.1", None))
        .await
        .unwrap();
    assert_eq!(
        again.hub_id, first.hub_id,
        "same key and hostname, same hub"
    );
    let second = hub
        .register(&request("hub-server-02", "0.5.0", None))
        .await
        .unwrap();
    assert_ne!(second.hub_id, first.hub_id);

    let op = operator(&cloud);
    let hubs = op.list_hubs().await.unwrap();
    assert_eq!(hubs.len(), 2, "{hubs:?}");
    let shown = op.get_hub(&first.hub_id).await.unwrap();
    assert_eq!(
        shown.hub_version, "0.5.1",
        "re-registration updates the version"
    );
    assert_eq!(shown.deploy_key_id, key_id);
    assert_eq!(shown.deploy_key_label, "jhb-hub-prod");
    assert_eq!(shown.last_validated_at, None);
    let keys = op.list_deploy_keys().await.unwrap();
    assert_eq!(keys[0].hubs, 2);
    assert_eq!(keys[0].status, "active");
    let raw = op
        .request(
            mftplus_client::Method::GET,
            "/api/v1/hubs/deploy-keys",
            None,
        )
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&raw.2).contains(&key),
        "listings never carry the key"
    );

    let validated = hub
        .validate(&first.hub_id, &request("hub-server-01", "0.5.1", None))
        .await
        .unwrap();
    assert_eq!(validated.hub_id, first.hub_id);
    assert!(op
        .get_hub(&first.hub_id)
        .await
        .unwrap()
        .last_validated_at
        .is_some());

    let audit = cloud.state.store.list_audit(0, 1000).await.unwrap();
    let events: Vec<&str> = audit.iter().map(|row| row.event.as_str()).collect();
    assert!(events.contains(&"deploy_key_created"), "{events:?}");
    assert_eq!(events.iter().filter(|e| **e == "hub_registered").count(), 3);
    assert!(events.contains(&"hub_validated"), "{events:?}");
}

#[tokio::test]
async fn status_follows_heartbeats_under_the_clock() {
    let cloud = cloud().await;
    let (_, hub) = hub_client(&cloud, "status").await;
    let hub_id = hub
        .register(&request("hub-a", "0.5.0", None))
        .await
        .unwrap()
        .hub_id;
    let op = operator(&cloud);
    let status = |op: Client, id: String| async move { op.get_hub(&id).await.unwrap().status };
    assert_eq!(status(op.clone(), hub_id.clone()).await, "online");

    cloud.clock.advance_secs(179);
    assert_eq!(status(op.clone(), hub_id.clone()).await, "online");
    cloud.clock.advance_secs(2);
    assert_eq!(
        status(op.clone(), hub_id.clone()).await,
        "offline",
        "silent for more than three intervals"
    );

    let answer = hub
        .heartbeat(&hub_id, &beat(false, &["Cloud API unreachable"]))
        .await
        .unwrap();
    assert_eq!(answer.status, "ok");
    assert_eq!(answer.heartbeat_interval_seconds, 60);
    let shown = op.get_hub(&hub_id).await.unwrap();
    assert_eq!(shown.status, "degraded", "recent but unhealthy");
    assert_eq!(shown.issues, vec!["Cloud API unreachable".to_string()]);

    hub.heartbeat(&hub_id, &beat(true, &[])).await.unwrap();
    assert_eq!(status(op.clone(), hub_id.clone()).await, "online");
}

#[tokio::test]
async fn versions_behind_and_license_modes() {
    let cloud = cloud().await;
    let (_, hub) = hub_client(&cloud, "versions").await;

    let old = hub
        .register(&request("old-hub", "0.2.3", None))
        .await
        .unwrap();
    assert_eq!(old.versions_behind, 3);
    assert_eq!(
        old.warning.as_deref(),
        Some("more than two versions behind")
    );
    assert_eq!(old.license_mode, "evaluation");
    let listed = operator(&cloud).get_hub(&old.hub_id).await.unwrap();
    assert_eq!(listed.versions_behind, 3);
    assert_eq!(
        listed.warning.as_deref(),
        Some("more than two versions behind")
    );

    let recent = hub
        .register(&request("recent-hub", "0.3.0", Some(LICENSE)))
        .await
        .unwrap();
    assert_eq!(recent.versions_behind, 2);
    assert_eq!(recent.warning, None, "two behind is not yet a warning");
    assert_eq!(recent.license_mode, "enterprise");

    let newer = hub
        .register(&request("ahead", "0.9.0", None))
        .await
        .unwrap();
    assert_eq!(newer.versions_behind, 0, "a newer hub is not behind");

    let wrong = hub
        .register(&request("unlicensed", "0.5.0", Some("MFT-ENT-FAKE")))
        .await
        .unwrap();
    assert_eq!(wrong.license_mode, "evaluation");
    assert!(
        wrong
            .warning
            .as_deref()
            .is_some_and(|w| w.contains("license")),
        "{wrong:?}"
    );
    // Losing the license on re-validation drops the hub back to evaluation.
    let downgraded = hub
        .validate(&recent.hub_id, &request("recent-hub", "0.3.0", None))
        .await
        .unwrap();
    assert_eq!(downgraded.license_mode, "evaluation");
}

#[tokio::test]
async fn a_newer_protocol_and_bad_input_are_refused() {
    let cloud = cloud().await;
    let (_, hub) = hub_client(&cloud, "protocol").await;
    let mut newer = request("hub-p", "0.5.0", None);
    newer.protocol = 2;
    let err = hub.register(&newer).await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err:?}");
    assert!(err.is(ErrorCode::UnsupportedProtocol), "{err:?}");

    for bad in [
        request("", "0.5.0", None),
        request("has space", "0.5.0", None),
        request("hub-p", "latest", None),
    ] {
        let err = hub.register(&bad).await.unwrap_err();
        assert!(err.is(ErrorCode::ValidationFailed), "{bad:?}: {err:?}");
    }
    assert!(operator(&cloud).list_hubs().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_the_next_contact() {
    let cloud = cloud().await;
    let (key_id, hub) = hub_client(&cloud, "revoke-me").await;
    let hub_id = hub
        .register(&request("hub-r", "0.5.0", None))
        .await
        .unwrap()
        .hub_id;
    // Warm the credential cache, so the revocation has to clear it.
    hub.heartbeat(&hub_id, &beat(true, &[])).await.unwrap();

    let op = operator(&cloud);
    op.revoke_deploy_key(&key_id).await.unwrap();
    let err: ClientError = hub.heartbeat(&hub_id, &beat(true, &[])).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.is(ErrorCode::TokenRevoked), "{err:?}");
    let err = hub
        .register(&request("hub-r", "0.5.0", None))
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::TokenRevoked), "{err:?}");

    let shown = op.get_hub(&hub_id).await.unwrap();
    assert_eq!(shown.status, "degraded", "recently seen, key revoked");
    cloud.clock.advance_secs(181);
    assert_eq!(op.get_hub(&hub_id).await.unwrap().status, "offline");
    let keys = op.list_deploy_keys().await.unwrap();
    assert_eq!(keys[0].status, "revoked");
    assert!(keys[0].revoked_at.is_some());
    // Revoking twice is fine; an unknown key is 404.
    op.revoke_deploy_key(&key_id).await.unwrap();
    let err = op.revoke_deploy_key("dk_nope").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let audit = cloud.state.store.list_audit(0, 1000).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|row| row.event == "deploy_key_revoked")
            .count(),
        1,
        "only the revocation that changed something is audited"
    );
}
