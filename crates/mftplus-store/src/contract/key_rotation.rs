//! Key rotation without downtime (`docs/key-rotation.md`): a host key replaced with a grace for
//! the old one, and a deploy key replaced by a new one whose hubs keep their ids.

use super::fleet::{customer_with_host, host_report, T0};
use super::{assert_conflict, assert_not_found, uid};
use crate::{DeployKeyRotation, HostKeyRotation, HubRegistration, NewDeployKey, Store};

fn hash(what: &str) -> String {
    mftplus_crypto::sha256_hex(uid(what).as_bytes())
}

fn rotation(host_id: &str, expected: &str, new: &str, at_ms: i64) -> HostKeyRotation {
    HostKeyRotation {
        host_id: host_id.to_string(),
        expected_key_hash: expected.to_string(),
        new_key_hash: new.to_string(),
        previous_valid_until_ms: at_ms + 86_400_000,
        idempotency_key: uid("idem"),
        sealed_new_key: uid("sealed"),
        at_ms,
    }
}

/// Whether the next report's ack asks the host to rotate its key.
async fn asked_to_rotate(store: &dyn Store, customer_id: &str, host_id: &str, at_ms: i64) -> bool {
    let acks = store
        .ingest_host_reports(&[host_report(customer_id, host_id, at_ms)])
        .await
        .expect("ingest");
    acks[0].as_ref().expect("an ack").rotate_key
}

/// The new hash becomes the host's key, the old one is kept with its grace and found by its
/// hash; a rotation from a key that is no longer current is refused; the next rotation replaces
/// the kept row; the recovery rotation and deleting the customer drop it. An operator's request
/// shows in the report ack until a rotation lands.
pub async fn host_key_rotation(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    assert!(!asked_to_rotate(store, &customer.id, &host.id, T0 + 10).await);
    store
        .request_host_key_rotation(&host.id, "op@example.com", T0 + 20)
        .await
        .expect("request");
    store
        .request_host_key_rotation(&host.id, "op@example.com", T0 + 30)
        .await
        .expect("asking again");
    assert!(asked_to_rotate(store, &customer.id, &host.id, T0 + 40).await);
    assert_not_found(
        store
            .request_host_key_rotation("hst-nope", "op@example.com", T0)
            .await,
        "an unknown host",
    );
    let second = hash("k2");
    let first = rotation(&host.id, &host.key_hash, &second, T0 + 1_000);
    let kept = store
        .rotate_host_key_with_grace(&first)
        .await
        .expect("rotate");
    assert_eq!(kept.host_id, host.id);
    assert_eq!(kept.previous_key_hash, host.key_hash);
    assert_eq!(kept.previous_valid_until_ms, first.previous_valid_until_ms);
    assert_eq!(kept.idempotency_key, first.idempotency_key);
    assert_eq!(kept.sealed_new_key, first.sealed_new_key);
    assert_eq!(kept.rotated_at_ms, T0 + 1_000);
    let now = store.get_host(&host.id).await.unwrap().unwrap();
    assert_eq!(now.key_hash, second, "the new key is the host's key");
    assert_eq!(now.desired_json, host.desired_json, "nothing else changed");
    assert!(
        !asked_to_rotate(store, &customer.id, &host.id, T0 + 1_100).await,
        "the rotation answers the request"
    );
    assert_eq!(
        store.get_host_by_key_hash(&host.key_hash).await.unwrap(),
        None,
        "the old key is no longer the host's own"
    );
    assert_eq!(
        store
            .get_host_key_rotation_by_previous_hash(&host.key_hash)
            .await
            .unwrap()
            .as_ref(),
        Some(&kept)
    );
    assert_eq!(
        store
            .get_host_key_rotation(&host.id)
            .await
            .unwrap()
            .as_ref(),
        Some(&kept)
    );

    // The same old key cannot rotate again: another rotation won.
    let stale = rotation(&host.id, &host.key_hash, &hash("k2b"), T0 + 2_000);
    assert_conflict(
        store.rotate_host_key_with_grace(&stale).await,
        "key_rotated",
    );
    assert_eq!(
        store.get_host(&host.id).await.unwrap().unwrap().key_hash,
        second
    );
    assert_not_found(
        store
            .rotate_host_key_with_grace(&rotation("hst-nope", "x", &hash("k"), T0))
            .await,
        "an unknown host",
    );

    // The next rotation replaces the kept row: the first key stops at once.
    let third = hash("k3");
    let next = store
        .rotate_host_key_with_grace(&rotation(&host.id, &second, &third, T0 + 3_000))
        .await
        .expect("rotate again");
    assert_eq!(next.previous_key_hash, second);
    assert_eq!(
        store
            .get_host_key_rotation_by_previous_hash(&host.key_hash)
            .await
            .unwrap(),
        None
    );

    // Recovery (re-enrollment) drops the kept key and a request in the same transaction.
    store
        .request_host_key_rotation(&host.id, "op@example.com", T0 + 3_500)
        .await
        .unwrap();
    store
        .set_recovery_mode(&host.id, Some(T0 + 60_000))
        .await
        .unwrap();
    store
        .rotate_host_key(&host.id, &hash("k4"), "restored", "1.1.0", T0 + 4_000)
        .await
        .expect("recovery rotation");
    assert_eq!(store.get_host_key_rotation(&host.id).await.unwrap(), None);
    assert!(!asked_to_rotate(store, &customer.id, &host.id, T0 + 4_100).await);
    assert_eq!(
        store
            .get_host_key_rotation_by_previous_hash(&second)
            .await
            .unwrap(),
        None
    );

    // Deleting the customer takes the kept rows with the hosts.
    let (other_customer, other) = customer_with_host(store, T0).await;
    store
        .rotate_host_key_with_grace(&rotation(&other.id, &other.key_hash, &hash("o"), T0))
        .await
        .unwrap();
    store.delete_customer(&other_customer.id).await.unwrap();
    assert_eq!(store.get_host_key_rotation(&other.id).await.unwrap(), None);
}

fn new_key(label: &str, at_ms: i64) -> NewDeployKey {
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

fn registration(key_id: &str, hostname: &str, at_ms: i64) -> HubRegistration {
    HubRegistration {
        new_id: uid("hub"),
        deploy_key_id: key_id.to_string(),
        hostname: hostname.to_string(),
        hub_version: "1.0.0".into(),
        platform: "linux".into(),
        license_mode: "evaluation".into(),
        at_ms,
    }
}

/// A rotation keeps the label, names the key it replaced and stamps the old key's end; the old
/// key's hubs move to the new key at their next registration with it, keeping their ids, also
/// across two rotations; a revoked or expired key cannot be rotated.
pub async fn deploy_key_rotation(store: &dyn Store) {
    let old = store
        .create_deploy_key(&new_key("jhb-hub", 1_000))
        .await
        .unwrap();
    assert_eq!((old.replaces.as_deref(), old.expires_at_ms), (None, None));
    assert!(old.usable_at(i64::MAX));
    let hostname = uid("hub-host");
    let hub = store
        .register_hub(&registration(&old.id, &hostname, 1_500))
        .await
        .unwrap();

    let new = store
        .rotate_deploy_key(&DeployKeyRotation {
            old_id: old.id.clone(),
            new: new_key("ignored", 2_000),
            old_expires_at_ms: 10_000,
        })
        .await
        .expect("rotate");
    assert_eq!(new.label, "jhb-hub", "the label stays");
    assert_eq!(new.replaces.as_deref(), Some(old.id.as_str()));
    assert_eq!(new.expires_at_ms, None);
    let old_now = store.get_deploy_key(&old.id).await.unwrap().unwrap();
    assert_eq!(old_now.expires_at_ms, Some(10_000));
    assert_eq!(old_now.revoked_at_ms, None);
    assert!(old_now.usable_at(9_999) && !old_now.usable_at(10_000));

    // A second rotation of the old key cannot move its end later.
    let again = store
        .rotate_deploy_key(&DeployKeyRotation {
            old_id: old.id.clone(),
            new: new_key("x", 3_000),
            old_expires_at_ms: 50_000,
        })
        .await
        .expect("rotating a key inside its grace");
    let old_now = store.get_deploy_key(&old.id).await.unwrap().unwrap();
    assert_eq!(
        old_now.expires_at_ms,
        Some(10_000),
        "the earlier end is kept"
    );
    assert_conflict(
        store
            .rotate_deploy_key(&DeployKeyRotation {
                old_id: old.id.clone(),
                new: new_key("x", 10_000),
                old_expires_at_ms: 20_000,
            })
            .await,
        "revoked",
    );
    assert_not_found(
        store
            .rotate_deploy_key(&DeployKeyRotation {
                old_id: "dep-nope".into(),
                new: new_key("x", 3_000),
                old_expires_at_ms: 20_000,
            })
            .await,
        "an unknown key",
    );

    // The hub registers with the new key: same id, now under the new key; registering again
    // (or the old key's other hostnames) changes nothing else.
    let moved = store
        .register_hub(&registration(&new.id, &hostname, 4_000))
        .await
        .unwrap();
    assert_eq!(moved.id, hub.id, "the hub keeps its id");
    assert_eq!(moved.deploy_key_id, new.id);
    assert_eq!(moved.registered_at_ms, hub.registered_at_ms);
    let again_moved = store
        .register_hub(&registration(&new.id, &hostname, 5_000))
        .await
        .unwrap();
    assert_eq!(again_moved.id, hub.id);
    let same_host: Vec<_> = store
        .list_hubs()
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.hostname == hostname)
        .collect();
    assert_eq!(
        same_host.len(),
        1,
        "one row for the hostname: {same_host:?}"
    );

    // Two rotations later (new → newer), the hub still under `new` moves to `newer`; a key
    // made by the other rotation of `old` does not adopt it.
    let newer = store
        .rotate_deploy_key(&DeployKeyRotation {
            old_id: new.id.clone(),
            new: new_key("x", 6_000),
            old_expires_at_ms: 60_000,
        })
        .await
        .unwrap();
    let other_host = uid("other-host");
    let stray = store
        .register_hub(&registration(&old.id, &other_host, 6_500))
        .await
        .unwrap();
    let adopted = store
        .register_hub(&registration(&newer.id, &other_host, 7_000))
        .await
        .unwrap();
    assert_eq!(adopted.id, stray.id, "adopted through two rotations");
    assert_eq!(adopted.deploy_key_id, newer.id);
    let unrelated = store
        .register_hub(&registration(&again.id, &hostname, 7_500))
        .await
        .unwrap();
    assert_ne!(
        unrelated.id, hub.id,
        "a sibling rotation does not take the hub"
    );

    // Revoking ends the grace at once.
    let revoked = store
        .create_deploy_key(&new_key("to-revoke", 8_000))
        .await
        .unwrap();
    store.revoke_deploy_key(&revoked.id, 8_500).await.unwrap();
    assert_conflict(
        store
            .rotate_deploy_key(&DeployKeyRotation {
                old_id: revoked.id.clone(),
                new: new_key("x", 9_000),
                old_expires_at_ms: 90_000,
            })
            .await,
        "revoked",
    );
}
