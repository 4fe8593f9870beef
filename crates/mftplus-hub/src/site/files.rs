//! The site store: sealed chunks of site-local transfers under `HUB_DATA_DIR/site/<transfer>/`,
//! one file per chunk named `<index>-<sha256>`. Naming a file by its content means a chunk is
//! never overwritten: a retry with the same bytes lands on the same name, and different bytes
//! (which the cloud will refuse) on another one, so the file the cloud recorded stays intact.
//!
//! A chunk is written to a hidden temporary file while its SHA-256 is computed, synced, checked
//! against the declared hash, renamed into place and the directory synced — all before the
//! cloud is asked to record it. A crash at any point leaves at worst a file the cloud never
//! recorded, which the sender's resume overwrites by name or the collector removes with its
//! transfer.

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("the chunk is longer than the transfer's chunk size allows")]
    TooLarge,
    #[error("the chunk arrived with SHA-256 {actual}, not the declared one")]
    Mismatch { actual: String },
    #[error("reading the chunk failed: {0}")]
    Body(String),
    #[error("the recorded chunk is not in the site store")]
    Missing,
    #[error("not a valid transfer id or chunk hash")]
    BadName,
    #[error("site store: {0}")]
    Io(#[from] std::io::Error),
}

/// Read size when serving a chunk.
const READ_BUF: usize = 256 * 1024;

#[derive(Debug)]
pub struct Files {
    root: PathBuf,
}

/// Transfer ids and hashes become path components: only plain names pass.
fn safe_name(name: &str) -> Result<&str, SiteError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(name).ok_or(SiteError::BadName)
}

impl Files {
    /// Creates `root` (0700) if needed.
    pub fn open(root: PathBuf) -> std::io::Result<Files> {
        std::fs::create_dir_all(&root)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
        Ok(Files { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn chunk_path(&self, transfer: &str, index: u64, sha256: &str) -> Result<PathBuf, SiteError> {
        let sha256 = safe_name(sha256)?;
        Ok(self
            .root
            .join(safe_name(transfer)?)
            .join(format!("{index}-{sha256}")))
    }

    /// Streams `body` into the store, at most `max` bytes, and publishes it only when its
    /// SHA-256 is `declared`. Returns the stored length.
    pub async fn store(
        &self,
        transfer: &str,
        index: u64,
        body: Body,
        max: u64,
        declared: &[u8; 32],
    ) -> Result<u64, SiteError> {
        let dir = self.root.join(safe_name(transfer)?);
        tokio::fs::create_dir_all(&dir).await?;
        let temp = dir.join(format!(".{index}.{:016x}.part", rand::random::<u64>()));
        let written = write_checked(&temp, body, max, declared).await;
        let len = match written {
            Ok(len) => len,
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(err);
            }
        };
        let target = self.chunk_path(transfer, index, &hex::encode(declared))?;
        tokio::fs::rename(&temp, &target).await?;
        sync_dir(dir).await?;
        Ok(len)
    }

    /// Opens a recorded chunk for serving, checking its length against the cloud's record.
    pub async fn open_chunk(
        &self,
        transfer: &str,
        index: u64,
        sha256: &str,
        expected_len: Option<u64>,
    ) -> Result<(tokio::fs::File, u64), SiteError> {
        let path = self.chunk_path(transfer, index, sha256)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(SiteError::Missing)
            }
            Err(err) => return Err(err.into()),
        };
        let len = file.metadata().await?.len();
        if expected_len.is_some_and(|expected| expected != len) {
            return Err(SiteError::Missing);
        }
        Ok((file, len))
    }

    /// The SHA-256 (hex) and length of a stored chunk, read back from disk.
    pub async fn digest(
        &self,
        transfer: &str,
        index: u64,
        sha256: &str,
    ) -> Result<(String, u64), SiteError> {
        let (mut file, _) = self.open_chunk(transfer, index, sha256, None).await?;
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0_u8; READ_BUF];
        let mut len = 0_u64;
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            context.update(&buf[..n]);
            len += n as u64;
        }
        Ok((hex::encode(context.finish()), len))
    }

    /// Transfers with a directory in the store.
    pub async fn transfers(&self) -> Result<Vec<String>, SiteError> {
        let mut out = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.root).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_type().await?.is_dir() {
                if let Some(name) = entry.file_name().to_str() {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Deletes a transfer's chunks.
    pub async fn remove(&self, transfer: &str) -> Result<(), SiteError> {
        match tokio::fs::remove_dir_all(self.root.join(safe_name(transfer)?)).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

async fn write_checked(
    path: &Path,
    body: Body,
    max: u64,
    declared: &[u8; 32],
) -> Result<u64, SiteError> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut len = 0_u64;
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|err| SiteError::Body(err.to_string()))?;
        len += piece.len() as u64;
        if len > max {
            return Err(SiteError::TooLarge);
        }
        context.update(&piece);
        file.write_all(&piece).await?;
    }
    let actual = context.finish();
    if actual.as_ref() != declared {
        return Err(SiteError::Mismatch {
            actual: hex::encode(actual),
        });
    }
    file.sync_all().await?;
    Ok(len)
}

async fn sync_dir(dir: PathBuf) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

/// A file as a response body, read in [`READ_BUF`] pieces.
pub fn file_body(file: tokio::fs::File) -> Body {
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0_u8; READ_BUF];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(file)))
            }
            Err(err) => Some((Err(err), None)),
        }
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> [u8; 32] {
        ring::digest::digest(&ring::digest::SHA256, bytes)
            .as_ref()
            .try_into()
            .unwrap()
    }

    #[tokio::test]
    async fn a_chunk_is_published_only_with_its_declared_hash() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path().join("site")).unwrap();
        let good = sha(b"sealed bytes");
        let len = files
            .store("tr1", 0, Body::from("sealed bytes"), 100, &good)
            .await
            .unwrap();
        assert_eq!(len, 12);
        let (digest, len) = files.digest("tr1", 0, &hex::encode(good)).await.unwrap();
        assert_eq!((digest, len), (hex::encode(good), 12));

        let wrong = files
            .store("tr1", 1, Body::from("other bytes"), 100, &good)
            .await;
        assert!(
            matches!(wrong, Err(SiteError::Mismatch { .. })),
            "{wrong:?}"
        );
        let long = files
            .store("tr1", 2, Body::from("sealed bytes"), 5, &good)
            .await;
        assert!(matches!(long, Err(SiteError::TooLarge)), "{long:?}");
        // Neither failure left a file behind, published or temporary.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("site/tr1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![format!("0-{}", hex::encode(good))]);

        assert!(matches!(
            files
                .open_chunk("../etc", 0, &hex::encode(good), None)
                .await,
            Err(SiteError::BadName)
        ));
        assert!(matches!(
            files
                .open_chunk("tr1", 0, &hex::encode(good), Some(13))
                .await,
            Err(SiteError::Missing)
        ));
        files.remove("tr1").await.unwrap();
        assert!(files.transfers().await.unwrap().is_empty());
    }
}
