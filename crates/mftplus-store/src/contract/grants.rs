//! Grants (decision 0022): recipients recorded as waiting for the sender to wrap the file key
//! to them, the sender's listing of what waits, and the compare-and-set that applies a grant.

use std::sync::Arc;

use super::transfers::{create, new_transfer, upload_whole};
use super::{assert_conflict, assert_not_found, uid};
use crate::{
    grant_conflict, recipient_kind, NewRecipient, NewTransfer, RecipientRow, Store, TransferFilter,
    TransferGrant, TransferParty, TransferRow,
};

fn recipient(id: &str, awaiting_grant: bool) -> NewRecipient {
    NewRecipient {
        kind: recipient_kind::USER.into(),
        id: id.to_string(),
        display: format!("{id}@example.com"),
        awaiting_grant,
    }
}

fn find<'a>(row: &'a TransferRow, id: &str) -> &'a RecipientRow {
    row.recipients
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("recipient {id} of {}", row.id))
}

fn grant(row: &TransferRow, header: &[u8], ids: &[&str], at_ms: i64) -> TransferGrant {
    TransferGrant {
        transfer_id: row.id.clone(),
        base_header: row.header.clone(),
        header: header.to_vec(),
        recipient_ids: ids.iter().map(|id| id.to_string()).collect(),
        at_ms,
    }
}

async fn awaiting_ids(store: &dyn Store, sender: &str, now_ms: i64, limit: u32) -> Vec<String> {
    store
        .list_awaiting_grants(sender, now_ms, limit)
        .await
        .expect("list_awaiting_grants")
        .into_iter()
        .map(|row| row.id)
        .collect()
}

/// Recording, listing and applying grants, and every refusal.
pub async fn transfer_grants(store: &dyn Store) {
    let sender = uid("usr");
    let (late, later, keyed) = (uid("usr"), uid("usr"), uid("usr"));
    let recipients = vec![
        recipient(&late, true),
        recipient(&later, true),
        recipient(&keyed, false),
    ];
    let transfer = create(store, &new_transfer(&sender, recipients, 1_000)).await;
    for row in [
        transfer.clone(),
        store.get_transfer(&transfer.id).await.unwrap().unwrap(),
    ] {
        assert!(find(&row, &late).awaiting_grant && find(&row, &later).awaiting_grant);
        assert!(!find(&row, &keyed).awaiting_grant);
        assert!(row.recipients.iter().all(|r| r.granted_at_ms.is_none()));
    }
    let listed = store
        .list_transfers(&TransferFilter {
            visible_to: Some(TransferParty::User(late.clone())),
            pending_for: None,
            limit: 10,
            ..TransferFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed,
        vec![transfer.clone()],
        "the listing carries the flags"
    );

    // What the sender's listing holds, and what it leaves out.
    let later_one = create(
        store,
        &new_transfer(&sender, vec![recipient(&late, true)], 1_200),
    )
    .await;
    create(
        store,
        &new_transfer(&sender, vec![recipient(&keyed, false)], 1_100),
    )
    .await;
    create(
        store,
        &new_transfer(&uid("usr"), vec![recipient(&late, true)], 1_100),
    )
    .await;
    let cancelled = create(
        store,
        &new_transfer(&sender, vec![recipient(&late, true)], 1_050),
    )
    .await;
    assert!(store.cancel_transfer(&cancelled.id, 1_300).await.unwrap());
    let past = NewTransfer {
        expires_at_ms: 1_400,
        ..new_transfer(&sender, vec![recipient(&late, true)], 1_060)
    };
    create(store, &past).await;
    assert_eq!(
        awaiting_ids(store, &sender, 1_500, 10).await,
        vec![transfer.id.clone(), later_one.id.clone()],
        "open, unexpired, waiting, this sender's, oldest first"
    );
    assert_eq!(
        awaiting_ids(store, &sender, 1_500, 1).await,
        vec![transfer.id.clone()]
    );
    assert!(awaiting_ids(store, &uid("usr"), 1_500, 10).await.is_empty());

    // Refusals change nothing.
    let stale = TransferGrant {
        base_header: b"another header".to_vec(),
        ..grant(&transfer, b"new", &[&late], 2_000)
    };
    assert_conflict(
        store.grant_transfer_access(&stale).await,
        grant_conflict::STALE,
    );
    for ids in [&[keyed.as_str()][..], &[&uid("usr")], &[&late, &late], &[]] {
        assert_conflict(
            store
                .grant_transfer_access(&grant(&transfer, b"new", ids, 2_000))
                .await,
            grant_conflict::NOT_AWAITING,
        );
    }
    assert_conflict(
        store
            .grant_transfer_access(&grant(&cancelled, b"new", &[&late], 2_000))
            .await,
        grant_conflict::CLOSED,
    );
    let unknown = TransferGrant {
        transfer_id: uid("tr"),
        ..grant(&transfer, b"new", &[&late], 2_000)
    };
    assert_not_found(store.grant_transfer_access(&unknown).await, "unknown");
    assert_eq!(
        store.get_transfer(&transfer.id).await.unwrap().unwrap(),
        transfer,
        "refused grants leave the transfer as it was"
    );

    // One recipient granted; the other still waits.
    let header_a = [transfer.header.as_slice(), b"+late"].concat();
    let granted = store
        .grant_transfer_access(&grant(&transfer, &header_a, &[&late], 2_000))
        .await
        .expect("grant");
    assert_eq!(granted.header, header_a);
    assert_eq!(
        (
            find(&granted, &late).awaiting_grant,
            find(&granted, &late).granted_at_ms
        ),
        (false, Some(2_000))
    );
    assert!(find(&granted, &later).awaiting_grant);
    assert_eq!(find(&granted, &keyed).granted_at_ms, None);
    assert_eq!(
        store.get_transfer(&transfer.id).await.unwrap().unwrap(),
        granted
    );
    assert_conflict(
        store
            .grant_transfer_access(&grant(&granted, b"again", &[&late], 2_100))
            .await,
        grant_conflict::NOT_AWAITING,
    );
    assert_conflict(
        store
            .grant_transfer_access(&grant(&transfer, b"old base", &[&later], 2_100))
            .await,
        grant_conflict::STALE,
    );
    assert_eq!(
        awaiting_ids(store, &sender, 2_100, 10).await,
        vec![transfer.id.clone(), later_one.id.clone()]
    );

    // A complete transfer can be granted too; past its expiry time it cannot.
    upload_whole(store, &transfer.id, 2).await;
    let complete = store.get_transfer(&transfer.id).await.unwrap().unwrap();
    assert_conflict(
        store
            .grant_transfer_access(&grant(
                &complete,
                b"late",
                &[&later],
                complete.expires_at_ms,
            ))
            .await,
        grant_conflict::CLOSED,
    );
    let done = store
        .grant_transfer_access(&grant(&complete, b"both", &[&later], 3_000))
        .await
        .expect("grant a complete transfer");
    assert!(done.recipients.iter().all(|r| !r.awaiting_grant));
    assert_eq!(done.chunk_count, Some(2), "a grant keeps the chunks");
    assert_eq!(
        awaiting_ids(store, &sender, 3_000, 10).await,
        vec![later_one.id.clone()],
        "nobody waits on it any more"
    );
}

/// Two grants built from the same header race: one applies, the other is stale, and the
/// header ends as the winner's (no stanza is silently lost).
pub async fn concurrent_grants(store: Arc<dyn Store>) {
    let sender = uid("usr");
    let (a, b) = (uid("usr"), uid("usr"));
    let transfer = create(
        &*store,
        &new_transfer(
            &sender,
            vec![recipient(&a, true), recipient(&b, true)],
            1_000,
        ),
    )
    .await;
    let mut tasks = Vec::new();
    for who in [a.clone(), b.clone()] {
        let store = store.clone();
        let request = grant(&transfer, who.as_bytes(), &[&who], 2_000);
        tasks.push(tokio::spawn(async move {
            store.grant_transfer_access(&request).await
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(row) => won.push(row),
            Err(crate::StoreError::Conflict(text)) => assert_eq!(text, grant_conflict::STALE),
            Err(other) => panic!("a racing grant failed: {other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one of two racing grants applies");
    let row = store.get_transfer(&transfer.id).await.unwrap().unwrap();
    assert_eq!(row, won[0]);
    let winner = String::from_utf8(row.header.clone()).unwrap();
    assert!(!find(&row, &winner).awaiting_grant);
    let loser = if winner == a { &b } else { &a };
    assert!(find(&row, loser).awaiting_grant);
}
