use std::sync::Arc;

use super::{assert_any_conflict, token, uid};
use crate::Store;

/// Token records: insert, look up, list the active ones, revoke in every way, refresh reuse
/// detection and pruning.
pub async fn tokens(store: &dyn Store) {
    let user = uid("usr");
    let family = uid("fam");
    let access = token(&user, "access", &family, 1_000, 10_000);
    let refresh = token(&user, "refresh", &family, 1_001, 100_000);
    let refresh_next = token(&user, "refresh", &family, 1_002, 100_000);
    let expired = token(&user, "access", &uid("fam"), 500, 900);
    let other_user = uid("usr");
    let other = token(&other_user, "access", &uid("fam"), 1_003, 100_000);
    for row in [&access, &refresh, &refresh_next, &expired, &other] {
        store.insert_token(row).await.expect("insert_token");
    }
    let mut duplicate = token(&user, "access", &family, 2_000, 20_000);
    duplicate.jti = access.jti.clone();
    assert_any_conflict(store.insert_token(&duplicate).await, "duplicate jti");

    assert_eq!(
        store.get_token(&access.jti).await.unwrap(),
        Some(access.clone())
    );
    assert_eq!(store.get_token(&uid("missing")).await.unwrap(), None);

    let active = store.list_active_tokens(Some(&user), 5_000).await.unwrap();
    assert_eq!(
        active,
        vec![refresh_next.clone(), refresh.clone(), access.clone()],
        "unexpired tokens of one user, newest first"
    );
    let at_expiry = store.list_active_tokens(Some(&user), 10_000).await.unwrap();
    assert!(
        !at_expiry.contains(&access),
        "a token is expired at its expires_at instant"
    );
    let everyone = store.list_active_tokens(None, 5_000).await.unwrap();
    assert!(everyone.contains(&other) && everyone.contains(&access));
    assert!(!everyone.contains(&expired));
    assert!(
        everyone
            .windows(2)
            .all(|pair| pair[0].issued_at_ms >= pair[1].issued_at_ms),
        "list_active_tokens(None) is newest first"
    );

    assert!(store.revoke_token(&access.jti, 6_000).await.unwrap());
    assert!(
        !store.revoke_token(&access.jti, 6_500).await.unwrap(),
        "second revoke is a no-op"
    );
    assert!(!store.revoke_token(&uid("missing"), 6_500).await.unwrap());
    let revoked = store.get_token(&access.jti).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(6_000));
    let active = store.list_active_tokens(Some(&user), 6_000).await.unwrap();
    assert!(!active.contains(&access), "revoked tokens are not active");

    assert!(
        store.mark_refresh_used(&refresh.jti, 7_000).await.unwrap(),
        "first use"
    );
    assert!(
        !store.mark_refresh_used(&refresh.jti, 7_100).await.unwrap(),
        "replay is detected"
    );
    let used = store.get_token(&refresh.jti).await.unwrap().unwrap();
    assert_eq!(
        used.used_at_ms,
        Some(7_000),
        "a replay does not move used_at"
    );
    assert!(
        store.touch_token(&refresh.jti, 7_500).await.unwrap(),
        "a later use moves on"
    );
    assert!(
        !store.touch_token(&refresh.jti, 7_400).await.unwrap(),
        "an earlier one does not move it back"
    );
    assert_eq!(
        store
            .get_token(&refresh.jti)
            .await
            .unwrap()
            .unwrap()
            .used_at_ms,
        Some(7_500)
    );
    assert!(
        !store.touch_token(&access.jti, 8_000).await.unwrap(),
        "a revoked row is not touched"
    );
    assert!(!store.touch_token(&uid("missing"), 8_000).await.unwrap());
    assert_eq!(used.revoked_at_ms, None, "marking used does not revoke");

    assert_eq!(store.revoke_token_family(&family, 8_000).await.unwrap(), 2);
    assert_eq!(store.revoke_token_family(&family, 8_100).await.unwrap(), 0);
    for jti in [&refresh.jti, &refresh_next.jti] {
        let row = store.get_token(jti).await.unwrap().unwrap();
        assert_eq!(row.revoked_at_ms, Some(8_000));
    }
    let access_again = store.get_token(&access.jti).await.unwrap().unwrap();
    assert_eq!(
        access_again.revoked_at_ms,
        Some(6_000),
        "family revocation keeps older stamps"
    );

    let second_login = token(&other_user, "refresh", &uid("fam"), 1_004, 100_000);
    let already = token(&other_user, "access", &uid("fam"), 1_005, 100_000);
    store.insert_token(&second_login).await.unwrap();
    store.insert_token(&already).await.unwrap();
    assert!(store.revoke_token(&already.jti, 8_500).await.unwrap());
    assert_eq!(
        store.revoke_user_tokens(&other_user, 9_000).await.unwrap(),
        2
    );
    assert_eq!(
        store.revoke_user_tokens(&other_user, 9_100).await.unwrap(),
        0
    );
    assert!(store
        .list_active_tokens(Some(&other_user), 5_000)
        .await
        .unwrap()
        .is_empty());
    let kept = store.get_token(&already.jti).await.unwrap().unwrap();
    assert_eq!(kept.revoked_at_ms, Some(8_500));

    let pruned = store.prune_tokens(1_000).await.expect("prune_tokens");
    assert!(pruned >= 1, "the expired token is pruned");
    assert_eq!(store.get_token(&expired.jti).await.unwrap(), None);
    assert!(
        store.get_token(&access.jti).await.unwrap().is_some(),
        "unexpired rows stay"
    );
    assert_eq!(
        store.prune_tokens(1_000).await.unwrap(),
        0,
        "pruning is idempotent"
    );
}

/// Many concurrent exchanges of one refresh token: exactly one wins.
pub async fn tokens_concurrent_refresh(store: Arc<dyn Store>) {
    let row = token(
        &uid("usr"),
        "refresh",
        &uid("fam"),
        1_000,
        9_000_000_000_000,
    );
    store.insert_token(&row).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|index| {
            let store = store.clone();
            let jti = row.jti.clone();
            tokio::spawn(async move { store.mark_refresh_used(&jti, 2_000 + index).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task
            .await
            .expect("task panicked")
            .expect("mark_refresh_used")
        {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one concurrent exchange succeeds");
}
