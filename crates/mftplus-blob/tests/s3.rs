//! The shared blob contract on the S3 backend, against a real S3-compatible server: moto's
//! server mode (`moto_server`, from PyPI; `scripts/s3-test-setup.sh` installs it), started by
//! each test on 127.0.0.1 and a free port and killed when the test ends.
//!
//! Without `moto_server` these tests fail, unless `MFTPLUS_SKIP_S3=1`, which skips them loudly.

use std::sync::Arc;
use std::time::Instant;

use mftplus_blob::contract::{fresh_transfer_id, pattern};
use mftplus_blob::testing::Moto;
use mftplus_blob::{BlobError, BlobKey, BlobStore, S3BlobStore};

#[tokio::test]
async fn contract_on_s3() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let started = Instant::now();
    mftplus_blob::contract::run_all(Arc::new(moto.store("mftplus/blobs"))).await;
    eprintln!("S3 contract ran in {:?}", started.elapsed());
}

/// Stores with different prefixes in one bucket never see each other's objects, including a
/// store at the bucket root, whose listing must not reach into the prefixed ones.
#[tokio::test]
async fn prefixes_isolate_stores_in_one_bucket() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let stores = [moto.store(""), moto.store("a"), moto.store("a/b")];
    let id = fresh_transfer_id("iso");
    for (n, store) in stores.iter().enumerate() {
        store
            .put(&BlobKey::chunk(&id, n as u64), pattern(10, n as u64))
            .await
            .unwrap();
    }
    for (n, store) in stores.iter().enumerate() {
        assert_eq!(store.list(&id).await.unwrap(), vec![n as u64], "store {n}");
        for other in (0..stores.len()).filter(|other| *other != n) {
            let key = BlobKey::chunk(&id, other as u64);
            assert!(
                store.get(&key).await.unwrap().is_none(),
                "store {n} sees {other}"
            );
        }
    }
    stores[1].delete_transfer(&id).await.unwrap();
    assert_eq!(stores[0].list(&id).await.unwrap(), vec![0]);
    assert_eq!(stores[2].list(&id).await.unwrap(), vec![2]);
}

/// A missing bucket fails `check` (what start-up calls), writes and listings. Reads of one
/// object cannot tell it from an absent object (S3 answers 404 to both), hence `check`.
#[tokio::test]
async fn a_missing_bucket_is_an_error() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let store = S3BlobStore::new(moto.config("no-such-bucket", "")).unwrap();
    let checked = store.check().await;
    assert!(
        matches!(checked, Err(BlobError::Backend(_))),
        "check: {checked:?}"
    );
    let key = BlobKey::chunk(&fresh_transfer_id("nobucket"), 0);
    let put = store.put(&key, pattern(10, 0)).await;
    assert!(matches!(put, Err(BlobError::Backend(_))), "put: {put:?}");
    let listed = store.list(key.transfer_id()).await;
    assert!(
        matches!(listed, Err(BlobError::Backend(_))),
        "list: {listed:?}"
    );
}
