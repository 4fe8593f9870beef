//! `mftctl hubs …` as the real binary against a real cloud: deploy keys created (shown once),
//! listed and revoked, hubs that registered with them listed and shown, `--json` throughout,
//! and a readonly operator who can look but not change anything.

mod cli_support;

use cli_support::Shell;
use mftplus_client::HubClient;
use mftplus_cloud::testing::TestCloud;
use mftplus_types::hubs::{HubHeartbeatRequest, HubRegisterRequest};
use mftplus_types::ErrorCode;

#[tokio::test]
async fn hub_commands_against_a_real_cloud() {
    let cloud = TestCloud::spawn().await;
    let op = Shell::admin(&cloud);

    op.line("mftctl hubs list").await.ok();
    let created = op
        .line("mftctl hubs deploy-keys create --label jhb-hub-prod --json")
        .await
        .ok()
        .json();
    let key = created["key"].as_str().unwrap().to_string();
    let key_id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("mft_dep_"), "{created}");
    let human = op
        .line("mftctl hubs deploy-keys create --label spare")
        .await
        .ok();
    assert!(human.stdout.contains("mft_dep_"), "{human:#?}");
    assert!(human.stderr.contains("shown only once"), "{human:#?}");

    let listed = op.line("mftctl hubs deploy-keys list --json").await.ok();
    assert!(!listed.stdout.contains(&key), "a listing never shows a key");
    let keys = listed.json();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let table = op.line("mftctl hubs deploy-keys list").await.ok();
    assert!(table.stdout.contains("jhb-hub-prod"), "{table:#?}");

    // A hub phones home with the key, as the hub crate will.
    let hub = HubClient::new(&format!("{}/api", cloud.url), &key).unwrap();
    let registered = hub
        .register(&HubRegisterRequest {
            protocol: 1,
            hub_version: mftplus_types::VERSION.into(),
            hostname: "hub-server-01".into(),
            platform: "linux".into(),
            license_key: None,
        })
        .await
        .unwrap();
    let hub_id = registered.hub_id.clone();

    let hubs = op.line("mftctl hubs list --json").await.ok().json();
    assert_eq!(hubs[0]["hub_id"], hub_id.as_str());
    assert_eq!(hubs[0]["status"], "online");
    assert_eq!(hubs[0]["deploy_key_label"], "jhb-hub-prod");
    let table = op.line("mftctl hubs list").await.ok();
    assert!(
        table.stdout.contains("hub-server-01") && table.stdout.contains("online"),
        "{table:#?}"
    );
    let shown = op.line(&format!("mftctl hubs show {hub_id}")).await.ok();
    assert!(shown.stdout.contains("evaluation"), "{shown:#?}");
    let shown = op
        .line(&format!("mftctl hubs show {hub_id} --json"))
        .await
        .ok()
        .json();
    assert_eq!(shown["hostname"], "hub-server-01");
    op.line("mftctl hubs show hub_0000000000000000")
        .await
        .fails_with("not_found");

    // A readonly operator sees hubs and keys but cannot create or revoke.
    let viewer_key = op
        .line("mftctl apikeys create --name viewer --role readonly --json")
        .await
        .ok()
        .json();
    let viewer = Shell {
        env: vec![(
            "MFTPLUS_API_KEY".into(),
            viewer_key["key"].as_str().unwrap().to_string(),
        )],
        ..Shell::new(&cloud)
    };
    viewer.line("mftctl hubs list").await.ok();
    viewer.line("mftctl hubs deploy-keys list").await.ok();
    viewer
        .line("mftctl hubs deploy-keys create --label nope")
        .await
        .fails_with("forbidden");
    viewer
        .line(&format!("mftctl hubs deploy-keys revoke {key_id}"))
        .await
        .fails_with("forbidden");

    let revoked = op
        .line(&format!("mftctl hubs deploy-keys revoke {key_id} --json"))
        .await
        .ok()
        .json();
    assert_eq!(revoked["revoked"], key_id.as_str());
    let err = hub
        .heartbeat(
            &hub_id,
            &HubHeartbeatRequest {
                hub_version: mftplus_types::VERSION.into(),
                uptime_seconds: 5,
                healthy: true,
                issues: Vec::new(),
            },
        )
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::TokenRevoked), "{err:?}");
    let keys = op
        .line("mftctl hubs deploy-keys list --json")
        .await
        .ok()
        .json();
    let revoked_row = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .unwrap();
    assert_eq!(revoked_row["status"], "revoked");
    op.line("mftctl hubs deploy-keys revoke dk_unknown")
        .await
        .fails_with("not_found");
}
