//! The chunk committer through the real API: concurrent uploads share commits (visible in the
//! metrics), an upload is answered only once its row is committed, and a committer stopped
//! dead (as by `kill -9`) never leaves a row without its blob.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use mftplus_blob::{BlobKey, TransferId};
use mftplus_cloud::testing::TestCloud;

/// Distinct bytes for chunk `index` of a test (the cloud treats chunks as opaque).
fn body(seed: u64, index: u64) -> Vec<u8> {
    // Past the largest chunk kept in the database: these rows come with blobs to sync.
    let len = mftplus_store::MAX_INLINE_CHUNK + 1 + (index as usize * 37) % 1000;
    (0..len)
        .map(|i| (i as u64 * 31 + index * 7 + seed) as u8)
        .collect()
}

/// Polls until `pending` rows wait for the committer (rows are queued by request tasks we do
/// not control). Bounded: panics after ten seconds.
async fn wait_for_pending(cloud: &TestCloud, pending: usize) {
    let stats = &cloud.state.metrics.chunk_commits;
    for _ in 0..1000 {
        if stats.pending.load(Ordering::SeqCst) == pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected {pending} rows waiting for the committer, saw {}",
        stats.pending.load(Ordering::SeqCst)
    );
}

/// Uploads chunks `indexes` of `id` at once; answers (index, status) in index order.
async fn upload_all(
    cloud: &TestCloud,
    cred: &Cred,
    id: &str,
    seed: u64,
    indexes: std::ops::Range<u64>,
) -> Vec<tokio::task::JoinHandle<(u64, u16)>> {
    indexes
        .map(|index| {
            let (url, cred, id) = (cloud.url.clone(), cred.clone(), id.to_string());
            tokio::spawn(async move {
                let bytes = body(seed, index);
                let status = upload(&url, &cred, &id, index, &bytes).await;
                (index, status)
            })
        })
        .collect()
}

/// `put_chunk` without a `TestCloud` borrow, so it can run in a spawned task.
async fn upload(url: &str, cred: &Cred, id: &str, index: u64, bytes: &[u8]) -> u16 {
    let Cred::ApiKey(key) = cred else {
        panic!("API key expected")
    };
    reqwest::Client::new()
        .put(format!("{url}/api/v1/transfers/{id}/chunks/{index}"))
        .header("X-API-Key", key)
        .header("x-chunk-sha256", mftplus_crypto::sha256_hex(bytes))
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn concurrent_uploads_share_one_commit() {
    const CHUNKS: u64 = 8;
    let cloud = TestCloud::spawn().await;
    let admin = common::admin(&cloud);
    let id = new_transfer(&cloud, &admin, "admin@example.com").await;
    let stats = &cloud.state.metrics.chunk_commits;

    // Hold batches back until every upload has queued its row, so the batch is
    // deterministic rather than a matter of timing.
    cloud.state.chunk_committer.pause();
    let batches_before = stats.batches.load(Ordering::SeqCst);
    let rows_before = stats.rows.load(Ordering::SeqCst);
    let uploads = upload_all(&cloud, &admin, &id, 1, 0..CHUNKS).await;
    wait_for_pending(&cloud, CHUNKS as usize).await;
    for upload in &uploads {
        assert!(
            !upload.is_finished(),
            "an upload was answered before its commit"
        );
    }
    cloud.state.chunk_committer.resume();
    for upload in uploads {
        let (index, status) = upload.await.unwrap();
        assert_eq!(status, 201, "chunk {index}");
    }

    let batches = stats.batches.load(Ordering::SeqCst) - batches_before;
    let rows = stats.rows.load(Ordering::SeqCst) - rows_before;
    assert_eq!(rows, CHUNKS, "every row went through the committer");
    assert!(
        batches < CHUNKS,
        "{CHUNKS} concurrent chunks took {batches} commits"
    );
    assert_eq!(batches, 1, "all queued rows belong in one batch");
    let rendered = cloud.state.metrics.render(0);
    assert!(
        rendered.contains("mftplus_chunk_commit_batches_total ")
            && rendered.contains("mftplus_chunk_commit_rows_total "),
        "{rendered}"
    );

    // The rows are there, with the blobs' hashes; an idle upload commits alone, at once.
    let chunks = cloud.state.store.list_chunks(&id).await.unwrap();
    assert_eq!(chunks.len(), CHUNKS as usize);
    assert_eq!(
        put_chunk(&cloud, &admin, &id, CHUNKS, &body(1, CHUNKS), true)
            .await
            .status,
        201
    );
    assert_eq!(stats.batches.load(Ordering::SeqCst) - batches_before, 2);
}

/// Every recorded row has its blob with the recorded hash, and every upload answered `201`
/// has its row.
async fn assert_rows_have_blobs(cloud: &TestCloud, id: &str, acknowledged: &[u64]) {
    let rows = cloud.state.store.list_chunks(id).await.unwrap();
    let tid = TransferId::new(id).unwrap();
    for row in &rows {
        let blob = cloud
            .state
            .blobs
            .get(&BlobKey::chunk(&tid, row.idx as u64))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("row {} has no blob", row.idx));
        assert_eq!(
            mftplus_crypto::sha256_hex(&blob),
            row.sha256,
            "row {} points at other bytes",
            row.idx
        );
    }
    for index in acknowledged {
        assert!(
            rows.iter().any(|row| row.idx == *index as i64),
            "chunk {index} was acknowledged but has no row"
        );
    }
}

#[tokio::test]
async fn a_killed_committer_never_leaves_a_row_without_its_blob() {
    // Killed while rows wait for a held-back batch: none is acknowledged or recorded.
    let cloud = TestCloud::spawn().await;
    let admin = common::admin(&cloud);
    let id = new_transfer(&cloud, &admin, "admin@example.com").await;
    cloud.state.chunk_committer.pause();
    let uploads = upload_all(&cloud, &admin, &id, 2, 0..4).await;
    wait_for_pending(&cloud, 4).await;
    cloud.state.chunk_committer.kill();
    for upload in uploads {
        let (index, status) = upload.await.unwrap();
        assert_eq!(status, 503, "chunk {index} after the committer died");
    }
    assert_rows_have_blobs(&cloud, &id, &[]).await;
    assert!(cloud.state.store.list_chunks(&id).await.unwrap().is_empty());
    // Nothing is acknowledged while it is gone.
    assert_eq!(
        put_chunk(&cloud, &admin, &id, 9, b"after", false)
            .await
            .status,
        503
    );
    cloud.stop().await;

    // Killed mid-stream after a varying number of acknowledgements: whatever was recorded
    // has its blob, and whatever was acknowledged was recorded.
    for kill_after in [1usize, 5, 11] {
        let cloud = TestCloud::spawn().await;
        let admin = common::admin(&cloud);
        let id = new_transfer(&cloud, &admin, "admin@example.com").await;
        let mut uploads = upload_all(&cloud, &admin, &id, kill_after as u64, 0..24).await;
        let mut acknowledged = Vec::new();
        while acknowledged.len() < kill_after {
            let (index, status) = uploads.remove(0).await.unwrap();
            assert_eq!(status, 201, "chunk {index} before the kill");
            acknowledged.push(index);
        }
        cloud.state.chunk_committer.kill();
        for upload in uploads {
            let (index, status) = upload.await.unwrap();
            assert!(
                status == 201 || status == 503,
                "chunk {index}: {status} around the kill"
            );
            if status == 201 {
                acknowledged.push(index);
            }
        }
        assert_rows_have_blobs(&cloud, &id, &acknowledged).await;
        cloud.stop().await;
    }
}
