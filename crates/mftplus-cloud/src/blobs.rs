//! Opening the payload store named by `transfers.blob_backend`, once, at start-up (and for
//! `--check-config`). Nothing else in the cloud knows which backend runs.

use std::sync::Arc;

use crate::config::{BlobBackend, TransfersSection};
use mftplus_blob::{BlobStore, FsBlobStore, S3BlobStore, S3Config};

/// What is wrong with the payload store, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("payload store ({where_}): {cause}")]
pub struct BlobSetupError {
    /// Which store: the folder or the bucket and endpoint.
    pub where_: String,
    pub cause: String,
}

/// A one-line description of the configured store, without credentials.
pub fn describe(config: &TransfersSection) -> String {
    match config.blob_backend {
        BlobBackend::Fs => format!("fs at {}", config.blob_path.display()),
        BlobBackend::S3 => {
            let s3 = &config.s3;
            format!(
                "s3 bucket {:?}{} at {}",
                s3.bucket,
                if s3.prefix.is_empty() {
                    String::new()
                } else {
                    format!(" prefix {:?}", s3.prefix)
                },
                s3.endpoint
                    .as_deref()
                    .unwrap_or("the AWS endpoint of the region")
            )
        }
    }
}

/// Builds the configured store and proves it usable with [`BlobStore::check`] (a writable
/// folder; a bucket the credentials can list), so a typo fails at start-up rather than at the
/// first upload.
pub async fn open(config: &TransfersSection) -> Result<Arc<dyn BlobStore>, BlobSetupError> {
    let fail = |cause: String| BlobSetupError {
        where_: describe(config),
        cause,
    };
    let store: Arc<dyn BlobStore> = match config.blob_backend {
        BlobBackend::Fs => {
            Arc::new(FsBlobStore::open(&config.blob_path).map_err(|e| fail(e.to_string()))?)
        }
        BlobBackend::S3 => {
            let s3 = &config.s3;
            let (Some(access_key_id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key)
            else {
                return Err(fail("the S3 credentials are not set".into()));
            };
            Arc::new(
                S3BlobStore::new(S3Config {
                    endpoint: s3.endpoint.clone(),
                    bucket: s3.bucket.clone(),
                    region: s3.region.clone(),
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret.clone(),
                    prefix: s3.prefix.clone(),
                    allow_http: s3.allow_http,
                })
                .map_err(|e| fail(e.to_string()))?,
            )
        }
    };
    store
        .check()
        .await
        .map_err(|e| fail(format!("not usable: {e}")))?;
    Ok(store)
}

/// What `--check-config` does: [`open`], except that a filesystem store whose folder does not
/// exist yet is not created (a check must not change the host); its nearest existing parent
/// must be a directory. Returns the line to print.
pub async fn check(config: &TransfersSection) -> Result<String, BlobSetupError> {
    if config.blob_backend == BlobBackend::Fs && !config.blob_path.exists() {
        let parent = config
            .blob_path
            .ancestors()
            .skip(1)
            .find(|p| p.exists())
            .filter(|p| p.is_dir());
        return match parent {
            Some(parent) => Ok(format!(
                "{} (not created yet; will be created under {})",
                describe(config),
                parent.display()
            )),
            None => Err(BlobSetupError {
                where_: describe(config),
                cause: "no existing directory to create it in".into(),
            }),
        };
    }
    open(config).await?;
    Ok(describe(config))
}
