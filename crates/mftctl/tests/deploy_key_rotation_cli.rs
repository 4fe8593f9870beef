//! `mftctl hubs deploy-keys rotate` as the real binary against a real cloud
//! (`docs/key-rotation.md`): the new key printed once with the old key's end, the old key
//! listed as rotated and still phoning home, `--grace`, `--json`, and a readonly operator
//! refused.

mod cli_support;

use cli_support::Shell;
use mftplus_client::HubClient;
use mftplus_cloud::testing::TestCloud;
use mftplus_types::hubs::HubRegisterRequest;

fn registration() -> HubRegisterRequest {
    HubRegisterRequest {
        protocol: 1,
        hub_version: mftplus_types::VERSION.into(),
        hostname: "hub-server-01".into(),
        platform: "linux".into(),
        license_key: None,
    }
}

#[tokio::test]
async fn rotate_prints_the_new_key_once_and_the_old_one_keeps_working() {
    let cloud = TestCloud::spawn().await;
    let op = Shell::admin(&cloud);
    let created = op
        .line("mftctl hubs deploy-keys create --label jhb-hub-prod --json")
        .await
        .ok()
        .json();
    let old_key = created["key"].as_str().unwrap().to_string();
    let old_id = created["id"].as_str().unwrap().to_string();
    let api = format!("{}/api", cloud.url);
    let old = HubClient::new(&api, &old_key).unwrap();
    let hub_id = old.register(&registration()).await.unwrap().hub_id;

    let human = op
        .line(&format!(
            "mftctl hubs deploy-keys rotate {old_id} --grace 2h"
        ))
        .await
        .ok();
    assert!(human.stdout.contains("mft_dep_"), "{human:#?}");
    assert!(human.stdout.contains(&old_id), "{human:#?}");
    assert!(
        human.stderr.contains("HUB_PREVIOUS_REGISTRATION_KEY"),
        "{human:#?}"
    );
    let new_key = human
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with("mft_dep_"))
        .unwrap()
        .to_string();
    assert_ne!(new_key, old_key);

    let keys = op
        .line("mftctl hubs deploy-keys list --json")
        .await
        .ok()
        .json();
    let row = |id: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(row(&old_id)["status"], "rotated");
    let table = op.line("mftctl hubs deploy-keys list").await.ok();
    assert!(table.stdout.contains("rotated (until"), "{table:#?}");
    assert!(!table.stdout.contains(&new_key) && !table.stdout.contains(&old_key));

    // The hub still on the old key phones home; restarted on the new one it is the same hub.
    old.register(&registration()).await.unwrap();
    let new = HubClient::new(&api, &new_key).unwrap();
    assert_eq!(new.register(&registration()).await.unwrap().hub_id, hub_id);

    // --json carries the same; a readonly operator cannot rotate.
    let rotated = op
        .line(&format!(
            "mftctl hubs deploy-keys rotate {} --json",
            row(&old_id)["id"].as_str().unwrap()
        ))
        .await
        .ok()
        .json();
    assert_eq!(rotated["label"], "jhb-hub-prod");
    assert_eq!(rotated["replaces"], old_id.as_str());
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
    viewer
        .line(&format!("mftctl hubs deploy-keys rotate {old_id}"))
        .await
        .fails_with("forbidden");
    op.line("mftctl hubs deploy-keys rotate dk_unknown")
        .await
        .fails_with("not_found");
}
