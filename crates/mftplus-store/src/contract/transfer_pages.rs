//! Pages of the transfer listing and their progress: the keyset cursor of `list_transfers`
//! over transfers created in the same millisecond, and `count_stored_chunks`.

use super::transfers::{chunk, create, cursor_of, new_transfer};
use super::uid;
use crate::{Store, TransferFilter, TransferParty, TransferRow};
use std::collections::HashMap;

/// Every page of `filter` after `filter.before`, `limit` rows at a time, concatenated.
async fn every_page(store: &dyn Store, mut filter: TransferFilter) -> Vec<TransferRow> {
    let mut all: Vec<TransferRow> = Vec::new();
    loop {
        let page = store.list_transfers(&filter).await.expect("list_transfers");
        assert!(
            page.len() <= filter.limit as usize,
            "a page holds at most its limit"
        );
        let full = page.len() == filter.limit as usize;
        all.extend(page);
        if !full {
            return all;
        }
        filter.before = all.last().map(cursor_of);
    }
}

pub async fn transfer_pages(store: &dyn Store) {
    let sender = uid("usr");
    // Five in one millisecond: only the id tells them apart, and ids of mixed case sort by
    // byte on every backend.
    let mut made = Vec::new();
    for at in [7_000, 7_000, 6_999, 7_000, 7_001, 7_000, 7_000] {
        made.push(create(store, &new_transfer(&sender, vec![], at)).await);
    }
    let mut expected = made.clone();
    expected.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));

    let mine = TransferFilter {
        visible_to: Some(TransferParty::User(sender.clone())),
        pending_for: None,
        limit: 2,
        ..TransferFilter::default()
    };
    assert_eq!(
        every_page(store, mine.clone()).await,
        expected,
        "pages of two, one after the other, hold every transfer once, newest first"
    );
    let after_third = TransferFilter {
        before: Some(cursor_of(&expected[2])),
        limit: 100,
        ..mine
    };
    assert_eq!(
        store.list_transfers(&after_third).await.unwrap(),
        expected[3..].to_vec(),
        "a cursor inside a millisecond goes on with the next id"
    );

    // Everyone's transfers (other sections' too): ours come once each, in the same order.
    let everyone = every_page(
        store,
        TransferFilter {
            limit: 3,
            ..TransferFilter::default()
        },
    )
    .await;
    let ours: Vec<TransferRow> = everyone
        .into_iter()
        .filter(|row| row.sender_id == sender)
        .collect();
    assert_eq!(ours, expected, "the unfiltered listing pages the same way");

    stored_chunk_counts(store, &made).await;
}

/// `count_stored_chunks`: one count per transfer that has chunks, in one call.
async fn stored_chunk_counts(store: &dyn Store, made: &[TransferRow]) {
    let (three, one, none) = (&made[0].id, &made[1].id, &made[2].id);
    store
        .record_chunks(
            three,
            &[
                chunk(0, "a", false),
                chunk(1, "b", false),
                chunk(2, "c", true),
            ],
        )
        .await
        .unwrap();
    store
        .record_chunks(one, &[chunk(0, "only", false)])
        .await
        .unwrap();
    // A retry stores nothing new, so it counts once.
    store
        .record_chunks(one, &[chunk(0, "only", false)])
        .await
        .unwrap();
    let asked = vec![three.clone(), one.clone(), none.clone(), uid("tr")];
    let counts = store.count_stored_chunks(&asked).await.expect("count");
    assert_eq!(
        counts,
        HashMap::from([(three.clone(), 3), (one.clone(), 1)]),
        "a transfer without chunks, or unknown, is absent"
    );
    assert!(store.count_stored_chunks(&[]).await.unwrap().is_empty());
}
