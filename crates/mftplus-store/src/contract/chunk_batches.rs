//! `record_chunk_batches`: the multi-transfer commit of the cloud's chunk committer.

use super::transfers::{chunk, create, new_transfer};
use super::{assert_conflict, assert_not_found, uid};
use crate::{ChunkBatch, ChunkOutcome, Store, NOT_UPLOADING};

fn batch(transfer_id: &str, chunks: Vec<crate::NewChunk>) -> ChunkBatch {
    ChunkBatch {
        transfer_id: transfer_id.to_string(),
        chunks,
    }
}

/// Several transfers in one call: each batch judged as `record_chunks` would, answers in the
/// caller's order (whatever order the backend locks in), and an unknown or cancelled
/// transfer fails only its own entry.
pub async fn record_chunk_batches(store: &dyn Store) {
    use ChunkOutcome::{AlreadyStored, Conflict, Stored};
    let sender = uid("usr");
    // Created so that the caller's order is not the id order.
    let b = create(store, &new_transfer(&sender, vec![], 1_000)).await;
    let a = create(store, &new_transfer(&sender, vec![], 1_000)).await;
    let cancelled = create(store, &new_transfer(&sender, vec![], 1_000)).await;
    assert!(store.cancel_transfer(&cancelled.id, 1_500).await.unwrap());
    store
        .record_chunks(&a.id, &[chunk(0, "a0", false)])
        .await
        .unwrap();

    let batches = [
        batch(&b.id, vec![chunk(0, "b0", false), chunk(1, "b1", true)]),
        batch(&cancelled.id, vec![chunk(0, "c0", false)]),
        batch(
            &a.id,
            vec![
                chunk(0, "a0", false),
                chunk(0, "other", false),
                chunk(1, "a1", false),
            ],
        ),
        batch(&uid("tr"), vec![chunk(0, "x", false)]),
        batch(&b.id, vec![chunk(1, "b1", true), chunk(2, "b2", false)]),
    ];
    let mut results = store
        .record_chunk_batches(&batches)
        .await
        .expect("the transaction commits")
        .into_iter();
    assert_eq!(results.len(), batches.len(), "one answer per batch");
    assert_eq!(results.next().unwrap().unwrap(), vec![Stored, Stored]);
    assert_conflict(results.next().unwrap(), NOT_UPLOADING);
    assert_eq!(
        results.next().unwrap().unwrap(),
        vec![AlreadyStored, Conflict, Stored],
        "judged against rows recorded before"
    );
    assert_not_found(results.next().unwrap(), "an unknown transfer's batch");
    assert_eq!(
        results.next().unwrap().unwrap(),
        vec![AlreadyStored, Stored],
        "a second batch of one transfer sees the first"
    );

    let indexes = |rows: Vec<crate::ChunkRow>| rows.iter().map(|c| c.idx).collect::<Vec<_>>();
    assert_eq!(indexes(store.list_chunks(&b.id).await.unwrap()), [0, 1, 2]);
    assert_eq!(indexes(store.list_chunks(&a.id).await.unwrap()), [0, 1]);
    assert!(
        store.list_chunks(&cancelled.id).await.unwrap().is_empty(),
        "nothing recorded for a cancelled transfer"
    );
    let bytes = |row: Option<crate::TransferRow>| row.unwrap().ciphertext_bytes;
    assert_eq!(bytes(store.get_transfer(&b.id).await.unwrap()), 6);
    assert_eq!(bytes(store.get_transfer(&a.id).await.unwrap()), 4);
    assert!(
        store
            .record_chunk_batches(&[])
            .await
            .expect("an empty call")
            .is_empty(),
        "no batches, no answers"
    );
}
