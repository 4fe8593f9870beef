//! Share links (decision 0023): link rows by token hash, revocation, counted opens with their
//! tickets, the download limit under concurrent opens, and links removed with their transfer.

use std::sync::Arc;

use super::transfers::{create, new_transfer, upload_whole};
use super::{assert_conflict, assert_not_found, uid};
use crate::{LinkOpen, LinkRefusal, LinkRow, NewLink, NewLinkTicket, Store};

fn new_link(transfer_id: &str, created_at_ms: i64, max_downloads: Option<i64>) -> NewLink {
    NewLink {
        id: uid("lnk"),
        transfer_id: transfer_id.to_string(),
        token_hash: mftplus_crypto::sha256_hex(uid("token").as_bytes()),
        created_by: uid("usr"),
        created_at_ms,
        expires_at_ms: 100_000,
        max_downloads,
    }
}

fn ticket(expires_at_ms: i64) -> NewLinkTicket {
    NewLinkTicket {
        ticket_hash: mftplus_crypto::sha256_hex(uid("ticket").as_bytes()),
        expires_at_ms,
    }
}

async fn complete_transfer(store: &dyn Store) -> String {
    let transfer = create(store, &new_transfer(&uid("usr"), vec![], 1_000)).await;
    upload_whole(store, &transfer.id, 1).await;
    transfer.id
}

/// Create, find by id and token hash, list in order, revoke once.
pub async fn links(store: &dyn Store) {
    let transfer = complete_transfer(store).await;
    let first = new_link(&transfer, 2_000, Some(3));
    let row = store.create_link(&first).await.expect("create_link");
    let expected = LinkRow {
        id: first.id.clone(),
        transfer_id: transfer.clone(),
        token_hash: first.token_hash.clone(),
        created_by: first.created_by.clone(),
        created_at_ms: 2_000,
        expires_at_ms: 100_000,
        max_downloads: Some(3),
        downloads: 0,
        last_opened_at_ms: None,
        revoked_at_ms: None,
    };
    assert_eq!(row, expected);
    assert_eq!(
        store.get_link(&first.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store
            .get_link_by_token_hash(&first.token_hash)
            .await
            .unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.get_link(&uid("lnk")).await.unwrap(), None);
    assert_eq!(
        store.get_link_by_token_hash("00").await.unwrap(),
        None,
        "an unknown token"
    );
    let duplicate = NewLink {
        id: uid("lnk"),
        ..first.clone()
    };
    assert_conflict(store.create_link(&duplicate).await, "token");
    assert_not_found(
        store
            .create_link(&new_link(&uid("tr"), 2_000, None))
            .await
            .map(|_| ()),
        "a link to an unknown transfer",
    );

    let second = store
        .create_link(&new_link(&transfer, 3_000, None))
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list_links(&transfer)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(listed, vec![first.id.clone(), second.id.clone()]);
    assert!(store.list_links(&uid("tr")).await.unwrap().is_empty());

    assert!(store.revoke_link(&first.id, 5_000).await.unwrap());
    assert!(
        !store.revoke_link(&first.id, 6_000).await.unwrap(),
        "a second revocation changes nothing"
    );
    assert!(!store.revoke_link(&uid("lnk"), 6_000).await.unwrap());
    let revoked = store.get_link(&first.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(5_000));
    assert_eq!(revoked.refusal(6_000), Some(LinkRefusal::Revoked));
    assert_eq!(second.refusal(99_999), None);
    assert_eq!(second.refusal(100_000), Some(LinkRefusal::Expired));
}

/// Each open counts and stores its ticket; a used-up, expired or revoked link refuses without
/// changing anything; tickets come back with their link, extend forward only, and are pruned.
pub async fn link_opens(store: &dyn Store) {
    let transfer = complete_transfer(store).await;
    let link = store
        .create_link(&new_link(&transfer, 2_000, Some(2)))
        .await
        .unwrap();
    let first = ticket(20_000);
    let LinkOpen::Opened(after) = store.open_link(&link.id, &first, 10_000).await.unwrap() else {
        panic!("a fresh link opens");
    };
    assert_eq!(
        (after.downloads, after.last_opened_at_ms),
        (1, Some(10_000))
    );
    assert_eq!(after.downloads_left(), Some(1));
    assert_conflict(
        store.open_link(&link.id, &first, 10_500).await.map(|_| ()),
        "ticket",
    );
    assert!(matches!(
        store.open_link(&link.id, &ticket(20_000), 11_000).await.unwrap(),
        LinkOpen::Opened(ref row) if row.downloads == 2
    ));
    match store
        .open_link(&link.id, &ticket(20_000), 12_000)
        .await
        .unwrap()
    {
        LinkOpen::Refused(LinkRefusal::Exhausted, row) => {
            assert_eq!((row.downloads, row.last_opened_at_ms), (2, Some(11_000)))
        }
        other => panic!("the third open of a two-download link: {other:?}"),
    }
    assert_not_found(
        store
            .open_link(&uid("lnk"), &ticket(1), 1)
            .await
            .map(|_| ()),
        "opening an unknown link",
    );

    let (found, with_link) = store
        .get_link_ticket(&first.ticket_hash)
        .await
        .unwrap()
        .expect("the ticket is stored");
    assert_eq!(
        (
            found.link_id.as_str(),
            found.created_at_ms,
            found.expires_at_ms
        ),
        (link.id.as_str(), 10_000, 20_000)
    );
    assert_eq!(with_link.downloads, 2);
    assert_eq!(store.get_link_ticket("00").await.unwrap(), None);
    assert!(store
        .extend_link_ticket(&first.ticket_hash, 30_000)
        .await
        .unwrap());
    assert!(
        !store
            .extend_link_ticket(&first.ticket_hash, 25_000)
            .await
            .unwrap(),
        "never backwards"
    );
    let (found, _) = store
        .get_link_ticket(&first.ticket_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.expires_at_ms, 30_000);

    // The expiry instant and revocation refuse too.
    let unlimited = store
        .create_link(&new_link(&transfer, 2_000, None))
        .await
        .unwrap();
    assert!(matches!(
        store
            .open_link(&unlimited.id, &ticket(1), 100_000)
            .await
            .unwrap(),
        LinkOpen::Refused(LinkRefusal::Expired, _)
    ));
    store.revoke_link(&unlimited.id, 3_000).await.unwrap();
    assert!(matches!(
        store.open_link(&unlimited.id, &ticket(1), 4_000).await.unwrap(),
        LinkOpen::Refused(LinkRefusal::Revoked, ref row) if row.downloads == 0
    ));

    // Pruning removes lapsed tickets only (the second open's lapses at 20,000).
    assert!(store.prune_link_tickets(25_000).await.unwrap() >= 1);
    assert!(store
        .get_link_ticket(&first.ticket_hash)
        .await
        .unwrap()
        .is_some());
    assert!(store.prune_link_tickets(30_001).await.unwrap() >= 1);
    assert_eq!(
        store.get_link_ticket(&first.ticket_hash).await.unwrap(),
        None
    );

    // Deleting the transfer takes its links and their tickets with it.
    let kept = ticket(50_000);
    let fresh = store
        .create_link(&new_link(&transfer, 2_000, None))
        .await
        .unwrap();
    store.open_link(&fresh.id, &kept, 5_000).await.unwrap();
    store.delete_transfer(&transfer).await.unwrap();
    assert!(store.list_links(&transfer).await.unwrap().is_empty());
    assert_eq!(store.get_link(&fresh.id).await.unwrap(), None);
    assert_eq!(
        store.get_link_ticket(&kept.ticket_hash).await.unwrap(),
        None
    );
}

/// Twenty opens racing for a link that allows five: exactly five win, and the count says five.
pub async fn concurrent_link_opens(store: Arc<dyn Store>) {
    let transfer = complete_transfer(&*store).await;
    let link = store
        .create_link(&new_link(&transfer, 2_000, Some(5)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, id) = (store.clone(), link.id.clone());
        tasks.push(tokio::spawn(async move {
            store.open_link(&id, &ticket(90_000), 10_000).await.unwrap()
        }));
    }
    let mut opened = 0;
    for task in tasks {
        match task.await.unwrap() {
            LinkOpen::Opened(_) => opened += 1,
            LinkOpen::Refused(reason, _) => assert_eq!(reason, LinkRefusal::Exhausted),
        }
    }
    assert_eq!(opened, 5, "the limit holds under concurrent opens");
    let row = store.get_link(&link.id).await.unwrap().unwrap();
    assert_eq!(row.downloads, 5);
}
