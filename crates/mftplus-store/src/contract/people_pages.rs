//! The bounded listings the dashboard's people pages read: users by email, API keys and a
//! person's sign-ins newest first, each a page behind a cursor. Walking every page must give
//! exactly the unbounded listing, in the same order.

use super::{new_key, new_user, token, uid};
use crate::{ApiKeyPage, ApiKeyRow, Store, TimeCursor, TokenRow, UserRow};

/// Every user, page by page of `limit`.
async fn walk_users(store: &dyn Store, limit: u32) -> Vec<UserRow> {
    let mut all: Vec<UserRow> = Vec::new();
    loop {
        let after = all.last().map(|user| user.email.clone());
        let page = store
            .list_users_page(after.as_deref(), limit)
            .await
            .expect("list_users_page");
        assert!(page.len() <= limit as usize, "a page holds at most limit");
        let done = page.len() < limit as usize;
        all.extend(page);
        if done {
            return all;
        }
    }
}

/// Every key of `page`'s kind, page by page.
async fn walk_keys(store: &dyn Store, mut page: ApiKeyPage) -> Vec<ApiKeyRow> {
    let mut all: Vec<ApiKeyRow> = Vec::new();
    loop {
        let rows = store
            .list_api_keys_page(&page)
            .await
            .expect("list_api_keys_page");
        assert!(
            rows.len() <= page.limit as usize,
            "a page holds at most limit"
        );
        let done = rows.len() < page.limit as usize;
        all.extend(rows);
        if done {
            return all;
        }
        page.before = all.last().map(|key| TimeCursor {
            at_ms: key.created_at_ms,
            id: key.id.clone(),
        });
    }
}

/// Users page by email; `get_users` finds several at once.
pub async fn people_pages(store: &dyn Store) {
    let tag = uid("p").to_lowercase();
    let mut ours = Vec::new();
    for name in ["carol", "alice", "bob"] {
        let user = store
            .create_user(&new_user(&format!("pg.{tag}.{name}@example.com"), 1_000))
            .await
            .expect("create user");
        ours.push(user);
    }
    let everyone = store.list_users().await.expect("list_users");
    for limit in [1, 2, 7] {
        assert_eq!(
            walk_users(store, limit).await,
            everyone,
            "the pages of {limit} users are list_users, in order"
        );
    }
    let start = format!("PG.{tag}.");
    let first = store.list_users_page(Some(&start), 2).await.unwrap();
    let emails: Vec<&str> = first.iter().map(|user| user.email.as_str()).collect();
    assert_eq!(
        emails,
        vec![ours[1].email.as_str(), ours[2].email.as_str()],
        "after a cursor (case-folded like emails), by email"
    );
    assert_eq!(store.list_users_page(None, 0).await.unwrap(), vec![]);

    let ids = vec![ours[0].id.clone(), uid("missing"), ours[2].id.clone()];
    let mut found = store.get_users(&ids).await.expect("get_users");
    found.sort_by(|a, b| a.email.cmp(&b.email));
    assert_eq!(found, vec![ours[2].clone(), ours[0].clone()]);
    assert!(store.get_users(&[]).await.unwrap().is_empty());

    api_key_pages(store, &ours[0], &ours[1]).await;
    sign_in_pages(store).await;
}

/// Keys newest first, ties by id, revoked ones only when asked.
async fn api_key_pages(store: &dyn Store, owner: &UserRow, other: &UserRow) {
    let mut made = Vec::new();
    for at in [1_000, 2_000, 2_000, 2_000, 3_000] {
        made.push(store.create_api_key(&new_key(&owner.id, at)).await.unwrap());
    }
    store
        .create_api_key(&new_key(&other.id, 2_500))
        .await
        .unwrap();
    assert!(store.revoke_api_key(&made[2].id, 4_000).await.unwrap());
    let mine = store.list_api_keys(Some(&owner.id)).await.unwrap();
    let page = |owner_id: Option<&str>, include_revoked: bool, limit: u32| ApiKeyPage {
        owner_id: owner_id.map(str::to_string),
        include_revoked,
        before: None,
        limit,
    };
    for limit in [1, 2, 10] {
        assert_eq!(
            walk_keys(store, page(Some(&owner.id), true, limit)).await,
            mine,
            "pages of {limit} of one owner's keys are list_api_keys"
        );
        let live: Vec<ApiKeyRow> = mine
            .iter()
            .filter(|key| key.revoked_at_ms.is_none())
            .cloned()
            .collect();
        assert_eq!(
            walk_keys(store, page(Some(&owner.id), false, limit)).await,
            live,
            "without revoked keys"
        );
    }
    let all = store.list_api_keys(None).await.unwrap();
    assert_eq!(walk_keys(store, page(None, true, 3)).await, all);
    let first = store
        .list_api_keys_page(&page(Some(&owner.id), true, 2))
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].id, made[4].id, "newest first");
}

/// A person's sign-ins: sessions, unexchanged refresh tokens and issued tokens, not the
/// access tokens a login pairs with its refresh token, nor anything revoked or expired.
async fn sign_in_pages(store: &dyn Store) {
    let user = uid("usr");
    let family = uid("fam");
    let mut session = token(&user, "session", &uid("sess"), 1_000, 50_000);
    session.family_id = session.jti.clone();
    session.created_via = "dashboard".into();
    let login_access = token(&user, "access", &family, 2_000, 50_000);
    let used_refresh = token(&user, "refresh", &family, 2_000, 50_000);
    let live_refresh = token(&user, "refresh", &family, 3_000, 50_000);
    let mut issued = token(&user, "access", &uid("fam"), 3_000, 50_000);
    issued.created_via = "admin".into();
    let revoked = token(&user, "session", &uid("sess"), 3_500, 50_000);
    let expired = token(&user, "refresh", &uid("fam"), 500, 4_000);
    let foreign = token(&uid("usr"), "session", &uid("sess"), 3_000, 50_000);
    for row in [
        &session,
        &login_access,
        &used_refresh,
        &live_refresh,
        &issued,
        &revoked,
        &expired,
        &foreign,
    ] {
        store.insert_token(row).await.expect("insert_token");
    }
    assert!(store
        .mark_refresh_used(&used_refresh.jti, 3_000)
        .await
        .unwrap());
    assert!(store.revoke_token(&revoked.jti, 4_000).await.unwrap());

    let mut newest_first = vec![live_refresh.clone(), issued.clone()];
    newest_first.sort_by(|a, b| b.jti.cmp(&a.jti));
    newest_first.push(session.clone());
    let all = store.list_sign_ins(&user, 5_000, None, 10).await.unwrap();
    assert_eq!(
        all, newest_first,
        "sign-ins newest first, ties by id, without paired access tokens, used refresh \
         tokens, revoked or expired rows, or another user's"
    );
    let mut walked: Vec<TokenRow> = Vec::new();
    loop {
        let before = walked.last().map(|row| TimeCursor {
            at_ms: row.issued_at_ms,
            id: row.jti.clone(),
        });
        let page = store
            .list_sign_ins(&user, 5_000, before.as_ref(), 1)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert_eq!(page.len(), 1, "a page holds at most limit");
        walked.extend(page);
    }
    assert_eq!(walked, newest_first, "pages of one walk the same list");
    assert!(store
        .list_sign_ins(&user, 50_000, None, 10)
        .await
        .unwrap()
        .is_empty());
}
