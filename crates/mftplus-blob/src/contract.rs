//! The backend-agnostic contract every [`BlobStore`] must pass.
//!
//! Backends call [`run_all`] from their own integration tests. Sections use fresh random
//! transfer ids and only assert about objects they created, so they may share a store (and a
//! bucket) with other tests and with earlier runs. Failures panic with a message naming the
//! broken rule, like any test assertion.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::{
    BlobError, BlobKey, BlobStore, ByteStream, TransferId, MAX_ID_LEN, STREAM_WRITE_BATCH,
};

/// Runs every section.
pub async fn run_all(store: Arc<dyn BlobStore>) {
    backend_name(&*store);
    store.check().await.expect("check on a usable store");
    round_trip(&*store).await;
    streaming(&*store).await;
    overwrite(&*store).await;
    missing(&*store).await;
    list_ordering(&*store).await;
    delete(&*store).await;
    delete_transfer(&*store).await;
    metadata_objects(&*store).await;
    key_boundaries(&*store).await;
    sync_and_sweep(&*store).await;
    put_stream_round_trip(&*store).await;
    put_stream_refusals(&*store).await;
    sync_objects(&*store).await;
    concurrent_puts(store).await;
}

/// A transfer id no other section or run uses.
pub fn fresh_transfer_id(label: &str) -> TransferId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    TransferId::new(format!("{label}-{nanos:x}-{n}")).expect("generated id is valid")
}

/// `len` bytes that differ with `seed` and with position (xorshift), so a swapped, shifted or
/// truncated object never compares equal by accident.
pub fn pattern(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn must_get(store: &dyn BlobStore, key: &BlobKey) -> Option<Bytes> {
    store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("get {key:?}: {e}"))
}

async fn must_put(store: &dyn BlobStore, key: &BlobKey, bytes: Bytes) {
    store
        .put(key, bytes)
        .await
        .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
}

async fn must_list(store: &dyn BlobStore, id: &TransferId) -> Vec<u64> {
    store
        .list(id)
        .await
        .unwrap_or_else(|e| panic!("list {id}: {e}"))
}

pub fn backend_name(store: &dyn BlobStore) {
    assert!(
        matches!(store.backend(), "fs" | "s3"),
        "unexpected backend name {}",
        store.backend()
    );
}

/// Empty, one-byte and multi-MiB objects come back byte for byte.
pub async fn round_trip(store: &dyn BlobStore) {
    let id = fresh_transfer_id("roundtrip");
    for (index, len) in [(0u64, 0usize), (1, 1), (2, 5 * 1024 * 1024)] {
        let key = BlobKey::chunk(&id, index);
        let bytes = pattern(len, index);
        must_put(store, &key, bytes.clone()).await;
        let back = must_get(store, &key).await;
        assert_eq!(
            back.as_deref().map(<[u8]>::len),
            Some(len),
            "length of a {len}-byte object after a round trip"
        );
        assert!(back.unwrap() == bytes, "{len}-byte object changed");
        assert!(
            store.exists(&key).await.unwrap(),
            "{len}-byte object missing"
        );
    }
    store.delete_transfer(&id).await.unwrap();
}

/// `get_stream` reports the length and yields the same bytes as `get`.
pub async fn streaming(store: &dyn BlobStore) {
    let id = fresh_transfer_id("stream");
    for (index, len) in [(0u64, 0usize), (1, 3 * 1024 * 1024 + 7)] {
        let key = BlobKey::chunk(&id, index);
        let bytes = pattern(len, 100 + index);
        must_put(store, &key, bytes.clone()).await;
        let reader = store
            .get_stream(&key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("get_stream of a stored {len}-byte object is None"));
        assert_eq!(reader.len, len as u64, "get_stream length");
        let pieces: Vec<Bytes> = reader.stream.try_collect().await.unwrap();
        let joined: Vec<u8> = pieces.concat();
        assert!(joined == bytes, "streamed {len}-byte object differs");
    }
    store.delete_transfer(&id).await.unwrap();
}

/// A second put replaces the object as a whole; repeating identical bytes is fine.
pub async fn overwrite(store: &dyn BlobStore) {
    let id = fresh_transfer_id("overwrite");
    let key = BlobKey::chunk(&id, 7);
    must_put(store, &key, pattern(4096, 1)).await;
    must_put(store, &key, pattern(100, 2)).await;
    assert!(
        must_get(store, &key).await.unwrap() == pattern(100, 2),
        "a shorter overwrite must replace the whole object, not a prefix"
    );
    must_put(store, &key, pattern(100, 2)).await;
    assert!(must_get(store, &key).await.unwrap() == pattern(100, 2));
    assert_eq!(must_list(store, &id).await, vec![7]);
    store.delete_transfer(&id).await.unwrap();
}

/// Absent objects are `None`/`false`/empty, never errors.
pub async fn missing(store: &dyn BlobStore) {
    let unknown = fresh_transfer_id("missing");
    let key = BlobKey::chunk(&unknown, 0);
    assert!(
        must_get(store, &key).await.is_none(),
        "get of an unknown transfer"
    );
    assert!(store.get_stream(&key).await.unwrap().is_none());
    assert!(!store.exists(&key).await.unwrap());
    assert!(must_list(store, &unknown).await.is_empty());

    let known = fresh_transfer_id("missing");
    must_put(store, &BlobKey::chunk(&known, 0), pattern(10, 0)).await;
    let absent = BlobKey::chunk(&known, 1);
    assert!(
        must_get(store, &absent).await.is_none(),
        "get of an unknown index"
    );
    assert!(store.get_stream(&absent).await.unwrap().is_none());
    assert!(!store.exists(&absent).await.unwrap());
    store.delete_transfer(&known).await.unwrap();
}

/// `list` is ascending by index whatever the write order, lists only chunks, and only the
/// transfer asked for, even when another id starts with the same characters.
pub async fn list_ordering(store: &dyn BlobStore) {
    let id = fresh_transfer_id("list");
    let longer = TransferId::new(format!("{id}0")).unwrap();
    let written = [10u64, 2, 0, 255, 1 << 40, 3, u64::MAX, 16];
    for index in written {
        must_put(store, &BlobKey::chunk(&id, index), pattern(1, index)).await;
    }
    must_put(store, &BlobKey::meta(&id, "header").unwrap(), pattern(5, 0)).await;
    must_put(store, &BlobKey::chunk(&longer, 1), pattern(1, 0)).await;
    let mut expected = written.to_vec();
    expected.sort_unstable();
    assert_eq!(must_list(store, &id).await, expected);
    assert_eq!(must_list(store, &longer).await, vec![1]);
    store.delete_transfer(&id).await.unwrap();
    store.delete_transfer(&longer).await.unwrap();
}

/// `delete` removes one object, leaves the rest, and is fine when already absent.
pub async fn delete(store: &dyn BlobStore) {
    let id = fresh_transfer_id("delete");
    for index in 0..3 {
        must_put(store, &BlobKey::chunk(&id, index), pattern(10, index)).await;
    }
    let key = BlobKey::chunk(&id, 1);
    store.delete(&key).await.unwrap();
    assert!(
        must_get(store, &key).await.is_none(),
        "deleted object still readable"
    );
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(must_list(store, &id).await, vec![0, 2]);
    store
        .delete(&key)
        .await
        .expect("deleting an absent object is not an error");
    assert!(must_get(store, &BlobKey::chunk(&id, 2)).await.unwrap() == pattern(10, 2));
    store.delete_transfer(&id).await.unwrap();
}

/// `delete_transfer` removes chunks and metadata of one transfer only, and is idempotent.
pub async fn delete_transfer(store: &dyn BlobStore) {
    let id = fresh_transfer_id("deltr");
    let other = fresh_transfer_id("deltr");
    for index in 0..5 {
        must_put(store, &BlobKey::chunk(&id, index), pattern(100, index)).await;
    }
    let manifest = BlobKey::meta(&id, "manifest").unwrap();
    must_put(store, &manifest, pattern(10, 9)).await;
    must_put(store, &BlobKey::chunk(&other, 0), pattern(10, 0)).await;

    store.delete_transfer(&id).await.unwrap();
    assert!(
        must_list(store, &id).await.is_empty(),
        "chunks left after delete_transfer"
    );
    assert!(
        must_get(store, &manifest).await.is_none(),
        "metadata left after delete_transfer"
    );
    assert!(must_get(store, &BlobKey::chunk(&id, 0)).await.is_none());
    store
        .delete_transfer(&id)
        .await
        .expect("second delete_transfer is a no-op");
    store
        .delete_transfer(&fresh_transfer_id("never"))
        .await
        .expect("delete_transfer of an unknown transfer is a no-op");
    assert!(
        must_get(store, &BlobKey::chunk(&other, 0)).await.is_some(),
        "delete_transfer touched another transfer"
    );
    store.delete_transfer(&other).await.unwrap();

    // The transfer can be written again afterwards (e.g. a retried upload after a cancel).
    must_put(store, &BlobKey::chunk(&id, 0), pattern(3, 3)).await;
    assert_eq!(must_list(store, &id).await, vec![0]);
    store.delete_transfer(&id).await.unwrap();
}

/// Metadata objects round-trip, are separate from chunks, and can be deleted.
pub async fn metadata_objects(store: &dyn BlobStore) {
    let id = fresh_transfer_id("meta");
    let header = BlobKey::meta(&id, "header").unwrap();
    let manifest = BlobKey::meta(&id, "manifest").unwrap();
    must_put(store, &header, pattern(64, 1)).await;
    must_put(store, &manifest, pattern(0, 2)).await;
    assert!(must_get(store, &header).await.unwrap() == pattern(64, 1));
    assert!(must_get(store, &manifest).await.unwrap().is_empty());
    assert!(
        must_list(store, &id).await.is_empty(),
        "metadata listed as chunks"
    );
    store.delete(&header).await.unwrap();
    assert!(!store.exists(&header).await.unwrap());
    assert!(store.exists(&manifest).await.unwrap());
    store.delete_transfer(&id).await.unwrap();
}

/// Ids that could escape the root or prefix are refused before reaching a backend, and the
/// longest id with every allowed character class works end to end.
pub async fn key_boundaries(store: &dyn BlobStore) {
    let too_long = "a".repeat(MAX_ID_LEN + 1);
    for bad in [
        "../x", "a/b", "", "..", ".", "/abs", "a\\b", "a b", &too_long,
    ] {
        assert!(
            matches!(TransferId::new(bad), Err(BlobError::InvalidKey(_))),
            "transfer id {bad:?} accepted"
        );
    }
    let valid = TransferId::new("x").unwrap();
    for bad in ["../x", "a/b", "", "x.chunk"] {
        assert!(
            matches!(BlobKey::meta(&valid, bad), Err(BlobError::InvalidKey(_))),
            "metadata name {bad:?} accepted"
        );
    }

    let unique = fresh_transfer_id("Z_z-9");
    let longest = format!("{unique}{}", "_".repeat(MAX_ID_LEN - unique.as_str().len()));
    let id = TransferId::new(longest).unwrap();
    assert_eq!(id.as_str().len(), MAX_ID_LEN);
    let key = BlobKey::chunk(&id, u64::MAX);
    must_put(store, &key, pattern(17, 17)).await;
    assert!(must_get(store, &key).await.unwrap() == pattern(17, 17));
    assert_eq!(must_list(store, &id).await, vec![u64::MAX]);
    store.delete_transfer(&id).await.unwrap();
}

/// `sync_transfer` works on a written and on an unknown transfer; `sweep_incomplete` finds
/// nothing to remove among recent writes.
pub async fn sync_and_sweep(store: &dyn BlobStore) {
    let id = fresh_transfer_id("sync");
    for index in 0..3 {
        must_put(store, &BlobKey::chunk(&id, index), pattern(1000, index)).await;
    }
    store.sync_transfer(&id).await.expect("sync_transfer");
    store
        .sync_transfer(&fresh_transfer_id("never"))
        .await
        .expect("sync_transfer of an unknown transfer");
    store
        .sweep_incomplete(Duration::from_secs(3600))
        .await
        .expect("sweep_incomplete");
    assert_eq!(must_list(store, &id).await, vec![0, 1, 2]);
    store.delete_transfer(&id).await.unwrap();
}

/// 32 tasks writing different indexes of one transfer at once all land intact.
pub async fn concurrent_puts(store: Arc<dyn BlobStore>) {
    const TASKS: u64 = 32;
    let id = fresh_transfer_id("concurrent");
    let tasks: Vec<_> = (0..TASKS)
        .map(|index| {
            let store = store.clone();
            let key = BlobKey::chunk(&id, index);
            tokio::spawn(async move { store.put(&key, pattern(64 * 1024, index)).await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("put task panicked")
            .expect("concurrent put");
    }
    assert_eq!(
        must_list(&*store, &id).await,
        (0..TASKS).collect::<Vec<_>>()
    );
    for index in 0..TASKS {
        let back = must_get(&*store, &BlobKey::chunk(&id, index))
            .await
            .unwrap();
        assert!(back == pattern(64 * 1024, index), "chunk {index} mixed up");
    }
    store.delete_transfer(&id).await.unwrap();
}

/// The SHA-256 of `bytes`, as `put_stream` expects it.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `bytes` as a body of pieces of `piece` bytes, with an empty piece in front (bodies may
/// have them).
pub fn pieces(bytes: &Bytes, piece: usize) -> ByteStream {
    let mut out = vec![Ok(Bytes::new())];
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + piece).min(bytes.len());
        out.push(Ok(bytes.slice(at..end)));
        at = end;
    }
    futures_util::stream::iter(out).boxed()
}

/// Bodies of every awkward size, in pieces of every awkward size, are stored byte for byte
/// and reported with their length and digest; a body of exactly `max_len` is accepted.
pub async fn put_stream_round_trip(store: &dyn BlobStore) {
    let id = fresh_transfer_id("pstream");
    let big = 2 * STREAM_WRITE_BATCH + 7;
    let cases = [
        (0usize, 1usize),
        (1, 1),
        (4096, 1000),
        (big, 64 * 1024),
        (big, big),
    ];
    for (index, (len, piece)) in (0u64..).zip(cases) {
        let key = BlobKey::chunk(&id, index);
        let bytes = pattern(len, 200 + index);
        let stored = store
            .put_stream(&key, pieces(&bytes, piece), len as u64, &sha256(&bytes))
            .await
            .unwrap_or_else(|e| panic!("put_stream of {len} bytes in {piece}-byte pieces: {e}"));
        assert_eq!(stored.len, len as u64, "reported length");
        assert_eq!(stored.sha256, sha256(&bytes), "reported digest");
        assert!(
            must_get(store, &key).await.unwrap() == bytes,
            "{len}-byte streamed object changed"
        );
    }
    // A streamed put replaces an earlier object as a whole, like `put`.
    let key = BlobKey::chunk(&id, 0);
    let replacement = pattern(10, 9);
    store
        .put_stream(&key, pieces(&replacement, 3), 10, &sha256(&replacement))
        .await
        .unwrap();
    assert!(must_get(store, &key).await.unwrap() == replacement);
    assert_eq!(must_list(store, &id).await, vec![0, 1, 2, 3, 4]);
    store.delete_transfer(&id).await.unwrap();
}

/// A body with another digest, one byte too many, or a failing source stores nothing and
/// leaves an earlier object at that key untouched.
pub async fn put_stream_refusals(store: &dyn BlobStore) {
    let id = fresh_transfer_id("prefuse");
    let fresh = BlobKey::chunk(&id, 0);
    let kept = BlobKey::chunk(&id, 1);
    let original = pattern(100, 1);
    must_put(store, &kept, original.clone()).await;
    let body = pattern(STREAM_WRITE_BATCH + 5, 2);
    let wrong = sha256(b"something else");
    let max = body.len() as u64;
    for key in [&fresh, &kept] {
        let mismatch = store
            .put_stream(key, pieces(&body, 4096), max, &wrong)
            .await;
        match mismatch {
            Err(BlobError::DigestMismatch { actual }) => {
                assert_eq!(actual.len(), 64, "actual digest in hex: {actual}")
            }
            other => panic!("wrong digest: expected DigestMismatch, got {other:?}"),
        }
        let too_large = store
            .put_stream(key, pieces(&body, 4096), max - 1, &sha256(&body))
            .await;
        assert!(
            matches!(too_large, Err(BlobError::TooLarge { max_len }) if max_len == max - 1),
            "one byte over the limit: {too_large:?}"
        );
        let failing = futures_util::stream::iter(vec![
            Ok(body.slice(..STREAM_WRITE_BATCH + 1)),
            Err(BlobError::Source("connection reset".into())),
        ])
        .boxed();
        let failed = store.put_stream(key, failing, max, &sha256(&body)).await;
        assert!(
            matches!(failed, Err(BlobError::Source(_))),
            "failing source: {failed:?}"
        );
    }
    assert!(
        must_get(store, &fresh).await.is_none(),
        "a refused put_stream left an object"
    );
    assert!(
        must_get(store, &kept).await.unwrap() == original,
        "a refused put_stream changed the existing object"
    );
    assert_eq!(must_list(store, &id).await, vec![1]);
    store.delete_transfer(&id).await.unwrap();
}

/// `sync_objects` accepts objects of several transfers, absent objects and an empty list.
pub async fn sync_objects(store: &dyn BlobStore) {
    let a = fresh_transfer_id("synco");
    let b = fresh_transfer_id("synco");
    let keys = [
        BlobKey::chunk(&a, 0),
        BlobKey::chunk(&a, 1),
        BlobKey::chunk(&b, 5),
    ];
    for (n, key) in (0u64..).zip(&keys) {
        must_put(store, key, pattern(1000, n)).await;
    }
    let mut with_absent = keys.to_vec();
    with_absent.push(BlobKey::chunk(&a, 99));
    with_absent.push(BlobKey::chunk(&fresh_transfer_id("never"), 0));
    store
        .sync_objects(&with_absent)
        .await
        .expect("sync_objects");
    store.sync_objects(&[]).await.expect("sync_objects of none");
    assert_eq!(must_list(store, &a).await, vec![0, 1]);
    assert_eq!(must_list(store, &b).await, vec![5]);
    store.delete_transfer(&a).await.unwrap();
    store.delete_transfer(&b).await.unwrap();
}
