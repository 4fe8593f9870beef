//! Chunk rows arriving together: `record_chunk_batches` (the multi-transfer commit of the
//! cloud's chunk committer) and concurrent `record_chunks` calls.

use std::sync::Arc;

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

/// Chunk batches arriving at once: distinct indexes are all stored, and of several uploads of
/// one index exactly one stores it.
pub async fn concurrent_record_chunks(store: Arc<dyn Store>) {
    const TASKS: i64 = 16;
    let t = create(&*store, &new_transfer(&uid("usr"), vec![], 1_000)).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|idx| {
            let (store, id) = (store.clone(), t.id.clone());
            let body = format!("chunk {idx:02}");
            tokio::spawn(async move {
                store
                    .record_chunks(&id, &[chunk(idx, &body, idx == TASKS - 1)])
                    .await
            })
        })
        .collect();
    for task in tasks {
        let outcomes = task.await.expect("task panicked").expect("record_chunks");
        assert_eq!(outcomes, vec![ChunkOutcome::Stored]);
    }
    let chunks = store.list_chunks(&t.id).await.unwrap();
    let indexes: Vec<i64> = chunks.iter().map(|chunk| chunk.idx).collect();
    assert_eq!(indexes, (0..TASKS).collect::<Vec<_>>());
    let row = store.get_transfer(&t.id).await.unwrap().unwrap();
    assert_eq!(
        row.ciphertext_bytes,
        TASKS * "chunk 00".len() as i64,
        "no concurrent batch lost its bytes"
    );
    let done = store
        .complete_transfer(&t.id, b"manifest", 2_000)
        .await
        .unwrap();
    assert_eq!(done.chunk_count, Some(TASKS));

    let same = create(&*store, &new_transfer(&uid("usr"), vec![], 1_000)).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, id) = (store.clone(), same.id.clone());
            tokio::spawn(async move { store.record_chunks(&id, &[chunk(0, "same", true)]).await })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.expect("task panicked").expect("record_chunks")[..] {
            [ChunkOutcome::Stored] => stored += 1,
            [ChunkOutcome::AlreadyStored] => {}
            ref other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(
        stored, 1,
        "exactly one concurrent upload of an index stores it"
    );
    let row = store.get_transfer(&same.id).await.unwrap().unwrap();
    assert_eq!(row.ciphertext_bytes, 4);
}

/// Chunks kept in their rows (decision 0037): the bytes come back as stored, through both
/// `record_chunks` and `record_chunk_batches` (with payload-store rows beside them in one
/// batch), listed as inline; a payload-store chunk has no bytes in the database, a retry of an
/// inline chunk is judged like any other, and deleting the transfer takes the bytes with it.
pub async fn inline_chunks(store: &dyn Store) {
    use ChunkOutcome::{AlreadyStored, Conflict, Stored};
    let sender = uid("usr");
    let one = create(store, &new_transfer(&sender, vec![], 1_000)).await;
    let two = create(store, &new_transfer(&sender, vec![], 1_000)).await;
    let inline = |idx: i64, body: &[u8], last: bool| crate::NewChunk {
        size: body.len() as i64,
        sha256: mftplus_crypto::sha256_hex(body),
        data: Some(body.to_vec()),
        ..chunk(idx, "", last)
    };
    // Every byte value, and the largest size kept in a row.
    let large: Vec<u8> = (0..crate::MAX_INLINE_CHUNK)
        .map(|i| (i % 256) as u8)
        .collect();
    assert_eq!(
        store
            .record_chunks(
                &one.id,
                &[
                    inline(0, b"\x00\xffsealed", false),
                    chunk(1, "in the store", true)
                ]
            )
            .await
            .unwrap(),
        vec![Stored, Stored]
    );
    let batches = [
        batch(
            &two.id,
            vec![chunk(0, "stored", false), inline(1, &large, true)],
        ),
        batch(
            &one.id,
            vec![
                inline(0, b"\x00\xffsealed", false),
                inline(2, b"other", false),
            ],
        ),
    ];
    let results = store.record_chunk_batches(&batches).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &vec![Stored, Stored]);
    assert_eq!(
        results[1].as_ref().unwrap(),
        &vec![AlreadyStored, Stored],
        "an inline retry is judged by index, size, hash and last flag"
    );
    assert_eq!(
        store
            .record_chunks(&one.id, &[inline(0, b"\x00\xffother!", false)])
            .await
            .unwrap(),
        vec![Conflict]
    );

    let listed: Vec<(i64, bool)> = store
        .list_chunks(&one.id)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.idx, c.inline))
        .collect();
    assert_eq!(listed, vec![(0, true), (1, false), (2, true)]);
    assert!(store.get_chunk(&two.id, 1).await.unwrap().unwrap().inline);
    assert!(!store.get_chunk(&two.id, 0).await.unwrap().unwrap().inline);
    assert_eq!(
        store.chunk_data(&one.id, 0).await.unwrap().as_deref(),
        Some(&b"\x00\xffsealed"[..])
    );
    assert_eq!(store.chunk_data(&two.id, 1).await.unwrap(), Some(large));
    assert_eq!(
        store.chunk_data(&one.id, 1).await.unwrap(),
        None,
        "in the payload store"
    );
    assert_eq!(
        store.chunk_data(&one.id, 9).await.unwrap(),
        None,
        "no such chunk"
    );
    assert_eq!(
        store.chunk_data(&uid("tr"), 0).await.unwrap(),
        None,
        "no such transfer"
    );

    store.delete_transfer(&one.id).await.unwrap();
    assert_eq!(
        store.chunk_data(&one.id, 0).await.unwrap(),
        None,
        "deleted with its transfer"
    );
}

/// A one-chunk transfer made complete in one call (decision 0037): the same row as creating,
/// recording and completing it one by one; a chunk that is not index 0 and last, or a taken
/// id, is refused with nothing written.
pub async fn create_complete_transfer(store: &dyn Store) {
    let sender = uid("usr");
    let recipient = uid("usr");
    let fresh = || new_transfer(&sender, vec![super::transfers::user(&recipient)], 3_000);
    let whole = |idx: i64, last: bool| crate::NewChunk {
        size: 5,
        sha256: mftplus_crypto::sha256_hex(b"small"),
        data: Some(b"small".to_vec()),
        ..chunk(idx, "", last)
    };
    let made = fresh();
    let row = store
        .create_complete_transfer(&made, &whole(0, true), b"manifest", 4_000)
        .await
        .unwrap();
    assert_eq!(
        (row.status.as_str(), row.chunk_count, row.ciphertext_bytes),
        (crate::transfer_status::COMPLETE, Some(1), 5)
    );
    assert_eq!(row.manifest.as_deref(), Some(&b"manifest"[..]));
    assert_eq!(row.completed_at_ms, Some(4_000));
    assert_eq!(row.header, made.header);
    assert_eq!(row.recipients.len(), 1);
    assert_eq!(store.get_transfer(&made.id).await.unwrap(), Some(row));
    assert_eq!(
        store.chunk_data(&made.id, 0).await.unwrap().as_deref(),
        Some(&b"small"[..])
    );

    assert_conflict(
        store
            .create_complete_transfer(&made, &whole(0, true), b"manifest", 4_000)
            .await,
        "id",
    );
    for (idx, last) in [(0, false), (1, true)] {
        let refused = fresh();
        let result = store
            .create_complete_transfer(&refused, &whole(idx, last), b"manifest", 4_000)
            .await;
        assert!(
            matches!(result, Err(crate::StoreError::Conflict(_))),
            "chunk {idx} (last: {last}) is no whole stream: {result:?}"
        );
        assert_eq!(
            store.get_transfer(&refused.id).await.unwrap(),
            None,
            "a refused transfer leaves no row"
        );
    }
}
