//! Deploy keys and the hub registry.

use std::sync::Arc;

use super::{assert_conflict, assert_not_found, uid};
use crate::{HubHeartbeat, HubRegistration, HubValidation, NewDeployKey, Store};

fn deploy_key(label: &str, at_ms: i64) -> NewDeployKey {
    let id = uid("dep");
    NewDeployKey {
        key_hash: mftplus_crypto::sha256_hex(id.as_bytes()),
        prefix: format!("mft_dep_{}", &id[4..8]),
        label: label.to_string(),
        created_by: "op@example.com".into(),
        created_at_ms: at_ms,
        id,
    }
}

fn registration(key_id: &str, hostname: &str, version: &str, at_ms: i64) -> HubRegistration {
    HubRegistration {
        new_id: uid("hub"),
        deploy_key_id: key_id.to_string(),
        hostname: hostname.to_string(),
        hub_version: version.to_string(),
        platform: "linux".into(),
        license_mode: "evaluation".into(),
        at_ms,
    }
}

/// Keys: created, found by id and hash, listed newest first, revoked once, never reused.
pub async fn hub_deploy_keys(store: &dyn Store) {
    let first = store
        .create_deploy_key(&deploy_key("jhb-hub-prod", 1_000))
        .await
        .expect("create deploy key");
    assert_eq!(first.revoked_at_ms, None);
    assert_eq!(first.label, "jhb-hub-prod");
    let second = store
        .create_deploy_key(&deploy_key("cpt-hub", 2_000))
        .await
        .unwrap();
    assert_eq!(
        store.get_deploy_key(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(
        store
            .get_deploy_key_by_hash(&second.key_hash)
            .await
            .unwrap()
            .map(|k| k.id),
        Some(second.id.clone())
    );
    assert_eq!(store.get_deploy_key("dep-nope").await.unwrap(), None);

    let mut clash = deploy_key("clash", 3_000);
    clash.key_hash = first.key_hash.clone();
    assert_conflict(store.create_deploy_key(&clash).await, "key_hash");
    let mut same_id = deploy_key("same id", 3_000);
    same_id.id = first.id.clone();
    assert_conflict(store.create_deploy_key(&same_id).await, "id");

    let listed: Vec<String> = store
        .list_deploy_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .filter(|id| *id == first.id || *id == second.id)
        .collect();
    assert_eq!(
        listed,
        vec![second.id.clone(), first.id.clone()],
        "newest first"
    );

    assert!(store.revoke_deploy_key(&first.id, 5_000).await.unwrap());
    assert!(
        !store.revoke_deploy_key(&first.id, 6_000).await.unwrap(),
        "a second revocation changes nothing"
    );
    let revoked = store
        .get_deploy_key_by_hash(&first.key_hash)
        .await
        .unwrap()
        .expect("a revoked key is still found, so it can be told from an unknown one");
    assert_eq!(revoked.revoked_at_ms, Some(5_000));
    assert_not_found(
        store.revoke_deploy_key("dep-nope", 1).await,
        "revoking an unknown key",
    );
}

/// Registration is idempotent per (key, hostname); validation and heartbeats update the row.
pub async fn hub_registry(store: &dyn Store) {
    let key = store
        .create_deploy_key(&deploy_key("registry", 1_000))
        .await
        .unwrap();
    let other_key = store
        .create_deploy_key(&deploy_key("registry-2", 1_000))
        .await
        .unwrap();

    let first = store
        .register_hub(&registration(&key.id, "hub-server-01", "0.1.0", 10_000))
        .await
        .expect("register");
    assert_eq!(first.registered_at_ms, 10_000);
    assert_eq!(first.last_seen_at_ms, 10_000);
    assert_eq!(first.last_validated_at_ms, None);
    assert!(first.healthy);
    assert_eq!(first.issues_json, "[]");

    let mut again = registration(&key.id, "hub-server-01", "0.2.0", 20_000);
    again.platform = "darwin".into();
    again.license_mode = "enterprise".into();
    let second = store.register_hub(&again).await.unwrap();
    assert_eq!(second.id, first.id, "same key and hostname keep the hub id");
    assert_eq!(second.registered_at_ms, 10_000);
    assert_eq!(second.last_seen_at_ms, 20_000);
    assert_eq!(
        (second.hub_version.as_str(), second.platform.as_str()),
        ("0.2.0", "darwin")
    );
    assert_eq!(second.license_mode, "enterprise");

    let elsewhere = store
        .register_hub(&registration(
            &other_key.id,
            "hub-server-01",
            "0.1.0",
            20_000,
        ))
        .await
        .unwrap();
    assert_ne!(
        elsewhere.id, first.id,
        "the same hostname under another key is another hub"
    );
    assert_not_found(
        store
            .register_hub(&registration("dep-nope", "x", "0.1.0", 1))
            .await,
        "registering under an unknown key",
    );

    store
        .record_hub_heartbeat(
            &first.id,
            &HubHeartbeat {
                hub_version: "0.2.1".into(),
                healthy: false,
                issues_json: r#"["Cloud API unreachable"]"#.into(),
                at_ms: 30_000,
            },
        )
        .await
        .expect("heartbeat");
    let beaten = store.get_hub(&first.id).await.unwrap().unwrap();
    assert_eq!(beaten.last_seen_at_ms, 30_000);
    assert!(!beaten.healthy);
    assert_eq!(beaten.issues_json, r#"["Cloud API unreachable"]"#);
    assert_eq!(beaten.hub_version, "0.2.1");
    assert_eq!(
        beaten.registered_at_ms, 10_000,
        "heartbeats keep registration"
    );

    let validated = store
        .validate_hub(
            &first.id,
            &HubValidation {
                hub_version: "0.3.0".into(),
                platform: "linux".into(),
                license_mode: "evaluation".into(),
                at_ms: 40_000,
            },
        )
        .await
        .expect("validate");
    assert_eq!(validated.last_validated_at_ms, Some(40_000));
    assert_eq!(validated.last_seen_at_ms, 40_000);
    assert_eq!(validated.hub_version, "0.3.0");
    assert!(!validated.healthy, "validation does not overwrite health");

    assert_not_found(
        store
            .record_hub_heartbeat(
                "hub-nope",
                &HubHeartbeat {
                    hub_version: "0".into(),
                    healthy: true,
                    issues_json: "[]".into(),
                    at_ms: 1,
                },
            )
            .await,
        "heartbeat of an unknown hub",
    );
    assert_not_found(
        store
            .validate_hub(
                "hub-nope",
                &HubValidation {
                    hub_version: "0".into(),
                    platform: "linux".into(),
                    license_mode: "evaluation".into(),
                    at_ms: 1,
                },
            )
            .await,
        "validation of an unknown hub",
    );
    assert_eq!(store.get_hub("hub-nope").await.unwrap(), None);

    let mine: Vec<(String, String)> = store
        .list_hubs()
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.id == first.id || h.id == elsewhere.id)
        .map(|h| (h.hostname, h.id))
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(
        mine.windows(2).all(|pair| pair[0] <= pair[1]),
        "ordered by hostname, then id: {mine:?}"
    );
}

/// Registrations racing for one hostname end with one hub.
pub async fn hub_concurrent_registration(store: Arc<dyn Store>) {
    let key = store
        .create_deploy_key(&deploy_key("race", 1_000))
        .await
        .unwrap();
    let hostname = uid("racer");
    let tasks: Vec<_> = (0..8)
        .map(|index| {
            let store = store.clone();
            let reg = registration(&key.id, &hostname, "0.1.0", 1_000 + index);
            tokio::spawn(async move { store.register_hub(&reg).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap().expect("concurrent register").id);
    }
    assert_eq!(ids.len(), 1, "one hub per (key, hostname): {ids:?}");
}
