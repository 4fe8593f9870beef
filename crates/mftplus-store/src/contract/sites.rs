//! Site-local transfers (decision 0012): users' recorded paths and which site transfers still
//! need their files.

use super::transfers::{create, new_transfer, upload_whole};
use super::uid;
use crate::{NewTransfer, Store, UserSite};

/// A user's path is replaced by the next one, direct or through a hub; unknown users have
/// none.
pub async fn site_user_paths(store: &dyn Store) {
    let (alice, bob, carol) = (uid("usr"), uid("usr"), uid("usr"));
    store
        .note_user_site(&alice, Some("hub-a"), 1_000)
        .await
        .unwrap();
    store
        .note_user_site(&bob, Some("hub-a"), 1_500)
        .await
        .unwrap();
    store.note_user_site(&bob, None, 2_000).await.unwrap();
    let mut seen = store
        .user_sites(&[alice.clone(), bob.clone(), carol.clone()])
        .await
        .unwrap();
    seen.sort_by_key(|site| site.seen_at_ms);
    assert_eq!(
        seen,
        vec![
            UserSite {
                user_id: alice.clone(),
                hub_id: Some("hub-a".into()),
                seen_at_ms: 1_000,
            },
            UserSite {
                user_id: bob.clone(),
                hub_id: None,
                seen_at_ms: 2_000,
            },
        ]
    );
    store
        .note_user_site(&alice, Some("hub-b"), 3_000)
        .await
        .unwrap();
    let alice_now = store
        .user_sites(std::slice::from_ref(&alice))
        .await
        .unwrap();
    assert_eq!(alice_now[0].hub_id.as_deref(), Some("hub-b"));
    assert!(store.user_sites(&[]).await.unwrap().is_empty());
}

/// Only the asking hub's own transfers that are uploading, or complete and unexpired, are
/// live.
pub async fn site_live_transfers(store: &dyn Store) {
    let sender = uid("usr");
    let on = |site: &str, expires_at_ms: i64| NewTransfer {
        site: Some(site.to_string()),
        expires_at_ms,
        ..new_transfer(&sender, vec![], 1_000)
    };
    let uploading = create(store, &on("hub-live", 900_000)).await;
    let complete = create(store, &on("hub-live", 900_000)).await;
    upload_whole(store, &complete.id, 2).await;
    let cancelled = create(store, &on("hub-live", 900_000)).await;
    assert!(store.cancel_transfer(&cancelled.id, 2_000).await.unwrap());
    let past_expiry = create(store, &on("hub-live", 5_000)).await;
    let other_site = create(store, &on("hub-other", 900_000)).await;
    let in_cloud = create(store, &new_transfer(&sender, vec![], 1_000)).await;

    let asked: Vec<String> = [
        &uploading.id,
        &complete.id,
        &cancelled.id,
        &past_expiry.id,
        &other_site.id,
        &in_cloud.id,
    ]
    .into_iter()
    .cloned()
    .chain(["tr-unknown".to_string()])
    .collect();
    let mut live = store
        .live_site_transfers("hub-live", &asked, 10_000)
        .await
        .unwrap();
    live.sort();
    let mut expected = vec![uploading.id.clone(), complete.id.clone()];
    expected.sort();
    assert_eq!(live, expected);
    assert_eq!(
        store
            .get_transfer(&complete.id)
            .await
            .unwrap()
            .unwrap()
            .site
            .as_deref(),
        Some("hub-live")
    );
}
