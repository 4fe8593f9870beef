use super::{assert_any_conflict, assert_conflict, assert_not_found, new_key, new_user, uid};
use crate::{ApiKeyRow, NewApiKey, Store};

fn expected_row(key: &NewApiKey) -> ApiKeyRow {
    ApiKeyRow {
        id: key.id.clone(),
        name: key.name.clone(),
        key_hash: key.key_hash.clone(),
        prefix: key.prefix.clone(),
        role: key.role.clone(),
        owner_id: key.owner_id.clone(),
        created_at_ms: key.created_at_ms,
        expires_at_ms: key.expires_at_ms,
        last_used_at_ms: None,
        revoked_at_ms: None,
        replaces: key.replaces.clone(),
    }
}

/// Create, look up, list, revoke, rotate and touch API keys.
pub async fn api_keys(store: &dyn Store) {
    let tag = uid("k").to_lowercase();
    let owner = store
        .create_user(&new_user(&format!("erin.{tag}@example.com"), 1_000))
        .await
        .unwrap();
    let other = store
        .create_user(&new_user(&format!("frank.{tag}@example.com"), 1_000))
        .await
        .unwrap();

    let first_new = new_key(&owner.id, 1_000);
    let first = store
        .create_api_key(&first_new)
        .await
        .expect("create first key");
    assert_eq!(first, expected_row(&first_new));
    let mut second_new = new_key(&owner.id, 2_000);
    second_new.expires_at_ms = None;
    let second = store
        .create_api_key(&second_new)
        .await
        .expect("create second key");
    assert_eq!(second.expires_at_ms, None);
    let foreign = store
        .create_api_key(&new_key(&other.id, 1_500))
        .await
        .unwrap();

    let mut same_hash = new_key(&owner.id, 2_500);
    same_hash.key_hash = first.key_hash.clone();
    assert_conflict(store.create_api_key(&same_hash).await, "key_hash");
    let mut same_id = new_key(&owner.id, 2_500);
    same_id.id = first.id.clone();
    assert_any_conflict(store.create_api_key(&same_id).await, "duplicate key id");

    assert_eq!(
        store.get_api_key(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_api_key(&uid("missing")).await.unwrap(), None);
    assert_eq!(
        store.get_api_key_by_hash(&second.key_hash).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store.get_api_key_by_hash(&"0".repeat(64)).await.unwrap(),
        None
    );

    let mine = store.list_api_keys(Some(&owner.id)).await.unwrap();
    assert_eq!(
        mine,
        vec![second.clone(), first.clone()],
        "newest first, one owner only"
    );
    let all = store.list_api_keys(None).await.unwrap();
    for key in [&first, &second, &foreign] {
        assert!(all.contains(key), "list_api_keys(None) lists every key");
    }
    assert!(
        all.windows(2)
            .all(|pair| pair[0].created_at_ms >= pair[1].created_at_ms),
        "list_api_keys(None) is newest first"
    );

    assert!(store.revoke_api_key(&first.id, 3_000).await.unwrap());
    assert!(
        !store.revoke_api_key(&first.id, 3_500).await.unwrap(),
        "second revoke is a no-op"
    );
    assert!(!store.revoke_api_key(&uid("missing"), 3_500).await.unwrap());
    let revoked = store.get_api_key(&first.id).await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at_ms,
        Some(3_000),
        "revocation time is not moved"
    );
    let listed = store.list_api_keys(Some(&owner.id)).await.unwrap();
    assert_eq!(listed.len(), 2, "revoked keys stay listed");

    // Rotation.
    let mut stale = new_key(&owner.id, 4_000);
    stale.replaces = Some(first.id.clone());
    assert_not_found(
        store.rotate_api_key(&first.id, &stale, 4_000).await,
        "rotate a revoked key",
    );
    assert_not_found(
        store.rotate_api_key(&uid("missing"), &stale, 4_000).await,
        "rotate a missing key",
    );
    assert_eq!(
        store.get_api_key(&stale.id).await.unwrap(),
        None,
        "failed rotation inserts nothing"
    );

    let mut clashing = new_key(&owner.id, 4_000);
    clashing.replaces = Some(second.id.clone());
    clashing.key_hash = foreign.key_hash.clone();
    assert_conflict(
        store.rotate_api_key(&second.id, &clashing, 4_000).await,
        "key_hash",
    );
    let untouched = store.get_api_key(&second.id).await.unwrap().unwrap();
    assert_eq!(
        untouched.revoked_at_ms, None,
        "a failed rotation rolls back the revocation"
    );

    let mut successor_new = new_key(&owner.id, 4_100);
    successor_new.replaces = Some(second.id.clone());
    let successor = store
        .rotate_api_key(&second.id, &successor_new, 4_100)
        .await
        .expect("rotate");
    assert_eq!(successor, expected_row(&successor_new));
    assert_eq!(successor.replaces.as_deref(), Some(second.id.as_str()));
    let rotated_out = store.get_api_key(&second.id).await.unwrap().unwrap();
    assert_eq!(
        rotated_out.revoked_at_ms,
        Some(4_100),
        "the old key is revoked by rotation"
    );
    assert_eq!(
        store
            .get_api_key_by_hash(&successor.key_hash)
            .await
            .unwrap(),
        Some(successor.clone())
    );
    assert_not_found(
        store
            .rotate_api_key(&second.id, &new_key(&owner.id, 4_200), 4_200)
            .await,
        "rotate an already rotated key",
    );

    // Last-use stamps only move forward.
    store.touch_api_keys(&[]).await.expect("empty touch");
    store
        .touch_api_keys(&[(successor.id.clone(), 5_000)])
        .await
        .unwrap();
    let touched = store.get_api_key(&successor.id).await.unwrap().unwrap();
    assert_eq!(touched.last_used_at_ms, Some(5_000));
    store
        .touch_api_keys(&[
            (successor.id.clone(), 4_000),
            (foreign.id.clone(), 4_500),
            (uid("missing"), 1),
        ])
        .await
        .expect("touch with an older stamp and an unknown id");
    let kept = store.get_api_key(&successor.id).await.unwrap().unwrap();
    assert_eq!(
        kept.last_used_at_ms,
        Some(5_000),
        "an older stamp never moves last_used back"
    );
    let foreign_touched = store.get_api_key(&foreign.id).await.unwrap().unwrap();
    assert_eq!(foreign_touched.last_used_at_ms, Some(4_500));
    store
        .touch_api_keys(&[(successor.id.clone(), 6_000), (successor.id.clone(), 5_500)])
        .await
        .unwrap();
    let latest = store.get_api_key(&successor.id).await.unwrap().unwrap();
    assert_eq!(
        latest.last_used_at_ms,
        Some(6_000),
        "the newest stamp of a batch wins"
    );
}

/// Unrevoked keys idle since before the cutoff (by last use, else by creation) get revoked.
pub async fn revoke_inactive_api_keys(store: &dyn Store) {
    let owner_id = uid("owner");
    // The cutoff also catches idle keys left by other sections; only ours are asserted.
    let base = 8_000_000_000_000;
    let never_used = store
        .create_api_key(&new_key(&owner_id, base))
        .await
        .unwrap();
    let used_long_ago = store
        .create_api_key(&new_key(&owner_id, base))
        .await
        .unwrap();
    let used_recently = store
        .create_api_key(&new_key(&owner_id, base))
        .await
        .unwrap();
    let created_recently = store
        .create_api_key(&new_key(&owner_id, base + 20_000))
        .await
        .unwrap();
    let already_revoked = store
        .create_api_key(&new_key(&owner_id, base))
        .await
        .unwrap();
    assert!(store
        .revoke_api_key(&already_revoked.id, base + 1)
        .await
        .unwrap());
    store
        .touch_api_keys(&[
            (used_long_ago.id.clone(), base + 10_000),
            (used_recently.id.clone(), base + 16_000),
        ])
        .await
        .unwrap();

    let at = base + 30_000;
    let revoked = store
        .revoke_inactive_api_keys(base + 15_000, at)
        .await
        .expect("revoke_inactive_api_keys");
    let mut ours: Vec<&str> = revoked
        .iter()
        .filter(|key| key.owner_id == owner_id)
        .map(|key| key.id.as_str())
        .collect();
    ours.sort_unstable();
    let mut expected = vec![never_used.id.as_str(), used_long_ago.id.as_str()];
    expected.sort_unstable();
    assert_eq!(
        ours, expected,
        "exactly the idle, unrevoked keys are revoked"
    );
    for key in &revoked {
        assert_eq!(
            key.revoked_at_ms,
            Some(at),
            "returned rows carry the revocation"
        );
    }

    for (key, revoked_at) in [
        (&never_used, Some(at)),
        (&used_long_ago, Some(at)),
        (&used_recently, None),
        (&created_recently, None),
        (&already_revoked, Some(base + 1)),
    ] {
        let now = store.get_api_key(&key.id).await.unwrap().unwrap();
        assert_eq!(
            now.revoked_at_ms, revoked_at,
            "key {} after revoke_inactive",
            key.id
        );
    }
    let again = store
        .revoke_inactive_api_keys(base + 15_000, at + 1)
        .await
        .unwrap();
    assert!(
        again.iter().all(|key| key.owner_id != owner_id),
        "a second pass revokes nothing new of ours"
    );
}
