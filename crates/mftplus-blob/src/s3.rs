//! [`S3BlobStore`]: objects in an S3-compatible bucket, through the `object_store` crate.
//!
//! Key layout (persisted): `<prefix>/<transfer_id>/<index as 16 hex digits>.chunk` and
//! `<prefix>/<transfer_id>/<name>.meta`, the same object names as the filesystem backend.
//! Path-style addressing (`endpoint/bucket/key`) so local and self-hosted services (MinIO,
//! Garage, moto) work without wildcard DNS.
//!
//! Every object is written with one `PutObject`, which S3 makes visible atomically and durably
//! when it answers, so `sync_transfer` and `sweep_incomplete` have nothing to do. No multipart
//! uploads: a chunk is far below S3's 5 GiB single-upload limit, and multipart would leave
//! invisible parts behind on a crash. For the same reason `put_stream` buffers the whole body
//! (one chunk, at most the caller's `max_len`) before its one `PutObject`: the digest must be
//! known to be right before anything is sent, and nothing is sent for a refused body.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{StreamExt, TryStreamExt};
use mftplus_base::Secret;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, PutPayloadMut};

use crate::key::{parse_chunk_name, BlobKey};
use crate::verify::{Digesting, StoredObject};
use crate::{BlobError, BlobReader, BlobResult, BlobStore, ByteStream, TransferId};

/// Whole-request timeout. object_store's default (30 s) would fail a 64 MiB chunk on a link
/// slower than ~2 MiB/s; five minutes still bounds a hung connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Where and how to reach the bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Base URL of the service, e.g. `http://127.0.0.1:9000`; `None` for AWS's endpoint of
    /// `region`.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// e.g. `us-east-1`; services that ignore regions accept any value.
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Key prefix all objects live under, e.g. `mftplus/blobs`; empty for the bucket root.
    /// Segments are `[A-Za-z0-9_.-]+`, neither `.` nor `..`.
    pub prefix: String,
    /// Accept an `http://` endpoint. Only for local test servers: the payload is ciphertext,
    /// but the request signatures and the credentials' use should not travel in clear.
    pub allow_http: bool,
}

/// Blob store on an S3-compatible service.
#[derive(Debug)]
pub struct S3BlobStore {
    store: AmazonS3,
    prefix: Path,
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty()
        || prefix.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
}

/// Absent objects are `None`; everything else the service says is a `Backend` error.
fn absent_as_none<T>(result: object_store::Result<T>) -> BlobResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(backend(e)),
    }
}

fn backend(err: object_store::Error) -> BlobError {
    BlobError::Backend(err.to_string())
}

impl S3BlobStore {
    /// Builds the client; does not contact the service (the first request will). `Config` for
    /// an unusable configuration, `InvalidKey` for a bad prefix.
    pub fn new(config: S3Config) -> BlobResult<S3BlobStore> {
        if !valid_prefix(&config.prefix) {
            return Err(BlobError::InvalidKey(format!(
                "S3 prefix {:?} must be /-separated segments of [A-Za-z0-9_.-], not . or ..",
                config.prefix
            )));
        }
        let prefix =
            Path::parse(&config.prefix).map_err(|e| BlobError::InvalidKey(e.to_string()))?;
        // Static credentials only: without them the builder would fall back to the instance
        // metadata service, i.e. network calls nobody configured.
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose())
            // Client options first: `with_client_options` replaces all of them, including the
            // `allow_http` flag set below.
            .with_client_options(ClientOptions::new().with_timeout(REQUEST_TIMEOUT))
            .with_allow_http(config.allow_http)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder
            .build()
            .map_err(|e| BlobError::Config(e.to_string()))?;
        Ok(S3BlobStore { store, prefix })
    }

    fn transfer_prefix(&self, transfer_id: &TransferId) -> Path {
        self.prefix.clone().join(transfer_id.as_str())
    }

    fn path(&self, key: &BlobKey) -> Path {
        self.transfer_prefix(key.transfer_id())
            .join(key.object_name().as_str())
    }

    /// Every object under the transfer's prefix, at any depth.
    async fn objects_of(&self, transfer_id: &TransferId) -> BlobResult<Vec<Path>> {
        self.store
            .list(Some(&self.transfer_prefix(transfer_id)))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn check(&self) -> BlobResult<()> {
        // One ListObjectsV2 request: the first page is enough to prove access.
        match self.store.list(Some(&self.prefix)).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(backend(e)),
        }
    }

    async fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        mut body: ByteStream,
        max_len: u64,
        expected_sha256: &[u8; 32],
    ) -> BlobResult<StoredObject> {
        let mut digest = Digesting::new(max_len);
        // Copied into the payload's own blocks rather than kept as the pieces: a piece may be
        // a small view of a much larger network buffer.
        let mut payload = PutPayloadMut::new();
        while let Some(piece) = body.next().await {
            let piece = piece?;
            digest.admit(piece.len())?;
            digest.update(&piece);
            payload.extend_from_slice(&piece);
        }
        let stored = digest.finish(expected_sha256)?;
        self.store
            .put(&self.path(key), payload.freeze())
            .await
            .map_err(backend)?;
        Ok(stored)
    }

    async fn get(&self, key: &BlobKey) -> BlobResult<Option<Bytes>> {
        let Some(found) = absent_as_none(self.store.get(&self.path(key)).await)? else {
            return Ok(None);
        };
        found.bytes().await.map(Some).map_err(backend)
    }

    async fn get_stream(&self, key: &BlobKey) -> BlobResult<Option<BlobReader>> {
        let Some(found) = absent_as_none(self.store.get(&self.path(key)).await)? else {
            return Ok(None);
        };
        Ok(Some(BlobReader {
            len: found.meta.size,
            stream: found.into_stream().map_err(backend).boxed(),
        }))
    }

    async fn exists(&self, key: &BlobKey) -> BlobResult<bool> {
        Ok(absent_as_none(self.store.head(&self.path(key)).await)?.is_some())
    }

    async fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        absent_as_none(self.store.delete(&self.path(key)).await)?;
        Ok(())
    }

    async fn delete_transfer(&self, transfer_id: &TransferId) -> BlobResult<()> {
        let objects = self.objects_of(transfer_id).await?;
        if objects.is_empty() {
            return Ok(());
        }
        // Batched DeleteObjects requests; an object deleted concurrently is not an error.
        let mut results = self
            .store
            .delete_stream(futures_util::stream::iter(objects.into_iter().map(Ok)).boxed());
        while let Some(result) = results.next().await {
            absent_as_none(result)?;
        }
        Ok(())
    }

    async fn list(&self, transfer_id: &TransferId) -> BlobResult<Vec<u64>> {
        let transfer_prefix = self.transfer_prefix(transfer_id);
        let mut indexes: Vec<u64> = self
            .objects_of(transfer_id)
            .await?
            .iter()
            .filter_map(|location| {
                // Only objects directly under the transfer's prefix are ours.
                let mut rest = location.prefix_match(&transfer_prefix)?;
                let name = rest.next()?;
                if rest.next().is_some() {
                    return None;
                }
                parse_chunk_name(name.as_ref())
            })
            .collect();
        indexes.sort_unstable();
        Ok(indexes)
    }

    async fn sync_transfer(&self, _transfer_id: &TransferId) -> BlobResult<()> {
        Ok(())
    }

    async fn sweep_incomplete(&self, _older_than: Duration) -> BlobResult<u64> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prefix: &str) -> S3Config {
        S3Config {
            endpoint: Some("http://127.0.0.1:9".into()),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("very-secret-value"),
            prefix: prefix.into(),
            allow_http: true,
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let shown = format!("{:?}", config(""));
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn prefixes_are_validated() {
        for good in ["", "blobs", "mftplus/blobs", "a.b/c-d_e"] {
            assert!(S3BlobStore::new(config(good)).is_ok(), "{good:?} refused");
        }
        for bad in ["/", "a//b", "../x", "a/..", ".", "a/", "/a", "a b", "é"] {
            assert!(
                matches!(S3BlobStore::new(config(bad)), Err(BlobError::InvalidKey(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn keys_follow_the_layout() {
        let store = S3BlobStore::new(config("mftplus/blobs")).unwrap();
        let id = TransferId::new("trf_1").unwrap();
        assert_eq!(
            store.path(&BlobKey::chunk(&id, 255)).as_ref(),
            "mftplus/blobs/trf_1/00000000000000ff.chunk"
        );
        assert_eq!(
            store.path(&BlobKey::meta(&id, "header").unwrap()).as_ref(),
            "mftplus/blobs/trf_1/header.meta"
        );
        let root = S3BlobStore::new(config("")).unwrap();
        assert_eq!(
            root.path(&BlobKey::chunk(&id, 0)).as_ref(),
            "trf_1/0000000000000000.chunk"
        );
    }
}
