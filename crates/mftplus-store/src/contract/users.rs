use super::{
    assert_any_conflict, assert_conflict, assert_not_found, new_key, new_user, token, uid,
};
use crate::{Store, UserUpdate};

/// User CRUD, case-insensitive email uniqueness, partial updates and ordering.
pub async fn users(store: &dyn Store) {
    let count_before = store.count_users().await.expect("count_users");
    let tag = uid("u").to_lowercase();

    let mixed_case = format!("Bob.{tag}@Example.COM");
    let bob = store
        .create_user(&new_user(&mixed_case, 1_000))
        .await
        .expect("create bob");
    assert_eq!(
        bob.email,
        mixed_case.to_lowercase(),
        "email is stored lower-cased"
    );
    assert_eq!(bob.name, "Test User");
    assert_eq!(bob.role, "viewer");
    assert_eq!(bob.user_type, "user");
    assert!(bob.password_hash.is_some());
    assert_eq!(bob.created_at_ms, 1_000);
    assert_eq!(
        bob.updated_at_ms, 1_000,
        "a new row's updated_at equals created_at"
    );
    assert_eq!(bob.last_login_at_ms, None);

    // Same address in another case is the same address.
    let clash = new_user(&mixed_case.to_uppercase(), 1_001);
    assert_conflict(store.create_user(&clash).await, "email");
    let mut same_id = new_user(&format!("other.{tag}@example.com"), 1_002);
    same_id.id = bob.id.clone();
    assert_any_conflict(store.create_user(&same_id).await, "duplicate user id");

    let mut service = new_user(&format!("alice.{tag}@example.com"), 2_000);
    service.user_type = "service".into();
    service.password_hash = None;
    let alice = store.create_user(&service).await.expect("create alice");
    assert_eq!(alice.password_hash, None);
    assert_eq!(alice.user_type, "service");

    assert_eq!(store.get_user(&bob.id).await.unwrap().as_ref(), Some(&bob));
    assert_eq!(store.get_user(&uid("missing")).await.unwrap(), None);
    let by_email = store
        .get_user_by_email(&mixed_case.to_uppercase())
        .await
        .unwrap();
    assert_eq!(
        by_email.as_ref(),
        Some(&bob),
        "lookup by email ignores case"
    );
    let unknown = format!("nobody.{tag}@example.com");
    assert_eq!(store.get_user_by_email(&unknown).await.unwrap(), None);

    assert_eq!(store.count_users().await.unwrap(), count_before + 2);
    let listed = store.list_users().await.expect("list_users");
    assert!(
        listed.windows(2).all(|pair| pair[0].email <= pair[1].email),
        "list_users is ordered by email"
    );
    let ours: Vec<&str> = listed
        .iter()
        .filter(|user| user.email.contains(&tag))
        .map(|user| user.id.as_str())
        .collect();
    assert_eq!(
        ours,
        vec![alice.id.as_str(), bob.id.as_str()],
        "alice sorts before bob"
    );

    // Partial update: only the `Some` fields move.
    let renamed = store
        .update_user(
            &bob.id,
            &UserUpdate {
                name: Some("Robert".into()),
                updated_at_ms: 3_000,
                ..UserUpdate::default()
            },
        )
        .await
        .expect("rename");
    assert_eq!(renamed.name, "Robert");
    assert_eq!(renamed.role, bob.role);
    assert_eq!(renamed.password_hash, bob.password_hash);
    assert_eq!(renamed.email, bob.email);
    assert_eq!(renamed.created_at_ms, 1_000);
    assert_eq!(renamed.updated_at_ms, 3_000);

    let promoted = store
        .update_user(
            &bob.id,
            &UserUpdate {
                name: None,
                role: Some("admin".into()),
                password_hash: Some("$argon2id$new".into()),
                updated_at_ms: 4_000,
            },
        )
        .await
        .expect("promote");
    assert_eq!(promoted.name, "Robert", "earlier update is kept");
    assert_eq!(promoted.role, "admin");
    assert_eq!(promoted.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(promoted.updated_at_ms, 4_000);
    assert_eq!(
        store.get_user(&bob.id).await.unwrap(),
        Some(promoted.clone())
    );
    let missing_update = UserUpdate {
        updated_at_ms: 1,
        ..UserUpdate::default()
    };
    assert_not_found(
        store.update_user(&uid("missing"), &missing_update).await,
        "update_user",
    );

    store
        .record_login(&bob.id, 5_000)
        .await
        .expect("record_login");
    let logged_in = store.get_user(&bob.id).await.unwrap().unwrap();
    assert_eq!(logged_in.last_login_at_ms, Some(5_000));
    assert_eq!(logged_in.role, "admin");
    assert_not_found(store.record_login(&uid("missing"), 1).await, "record_login");

    store
        .delete_user(&alice.id, 6_000)
        .await
        .expect("delete alice");
    assert_eq!(store.get_user(&alice.id).await.unwrap(), None);
    assert_eq!(store.get_user_by_email(&alice.email).await.unwrap(), None);
    assert_not_found(
        store.delete_user(&alice.id, 6_001).await,
        "second delete_user",
    );
    assert_eq!(store.count_users().await.unwrap(), count_before + 1);

    // A deleted user's address is free again.
    let again = store
        .create_user(&new_user(&alice.email, 7_000))
        .await
        .expect("reuse a deleted user's email");
    assert_ne!(again.id, alice.id);
    assert_eq!(again.email, alice.email);
}

/// Deleting a user makes its API keys and tokens unusable: they are either gone or revoked.
/// Keys revoked earlier keep their original revocation time.
pub async fn delete_user_disables_credentials(store: &dyn Store) {
    let tag = uid("d").to_lowercase();
    let user = store
        .create_user(&new_user(&format!("carol.{tag}@example.com"), 1_000))
        .await
        .unwrap();
    let bystander = store
        .create_user(&new_user(&format!("dave.{tag}@example.com"), 1_000))
        .await
        .unwrap();

    let live_key = store
        .create_api_key(&new_key(&user.id, 1_100))
        .await
        .unwrap();
    let old_key = store
        .create_api_key(&new_key(&user.id, 1_200))
        .await
        .unwrap();
    assert!(store.revoke_api_key(&old_key.id, 1_300).await.unwrap());
    let other_key = store
        .create_api_key(&new_key(&bystander.id, 1_100))
        .await
        .unwrap();

    let far = 9_000_000_000_000;
    let family = uid("fam");
    let access = token(&user.id, "access", &family, 1_400, far);
    let refresh = token(&user.id, "refresh", &family, 1_400, far);
    let other_token = token(&bystander.id, "access", &uid("fam"), 1_400, far);
    for row in [&access, &refresh, &other_token] {
        store.insert_token(row).await.unwrap();
    }

    store
        .delete_user(&user.id, 2_000)
        .await
        .expect("delete_user");

    for key in [&live_key, &old_key] {
        let by_hash = store.get_api_key_by_hash(&key.key_hash).await.unwrap();
        let by_id = store.get_api_key(&key.id).await.unwrap();
        for found in [by_hash, by_id].into_iter().flatten() {
            assert!(
                found.revoked_at_ms.is_some(),
                "a deleted user's key must not stay usable"
            );
        }
    }
    if let Some(found) = store.get_api_key(&old_key.id).await.unwrap() {
        assert_eq!(
            found.revoked_at_ms,
            Some(1_300),
            "earlier revocation time is kept"
        );
    }
    if let Some(found) = store.get_api_key(&live_key.id).await.unwrap() {
        assert_eq!(found.revoked_at_ms, Some(2_000));
    }
    for jti in [&access.jti, &refresh.jti] {
        if let Some(found) = store.get_token(jti).await.unwrap() {
            assert_eq!(
                found.revoked_at_ms,
                Some(2_000),
                "a deleted user's token must be revoked"
            );
        }
    }
    let active = store
        .list_active_tokens(Some(&user.id), 3_000)
        .await
        .unwrap();
    assert!(
        active.is_empty(),
        "a deleted user has no active tokens: {active:?}"
    );

    // Nobody else is touched.
    let other_key_now = store.get_api_key(&other_key.id).await.unwrap().unwrap();
    assert_eq!(other_key_now.revoked_at_ms, None);
    let other_token_now = store.get_token(&other_token.jti).await.unwrap().unwrap();
    assert_eq!(other_token_now.revoked_at_ms, None);
    assert!(store.get_user(&bystander.id).await.unwrap().is_some());
}
