//! The payload half of a backup: one line per chunk row of the snapshot in `payloads.jsonl`,
//! and, from a filesystem payload store, a copy of each chunk under
//! `blobs/<transfer id>/<index as 16 hex digits>.chunk`. The list comes from the snapshot, not
//! from walking the store, so it holds exactly the chunks the copied database promises.
//!
//! Chunk rows are committed only after their blob is synced, so every chunk of the snapshot was
//! in the store when the snapshot was taken; one can only be gone by the time it is copied if
//! its transfer expired and the hourly sweep removed it meanwhile (`expired`). Anything else
//! absent, or bytes that do not match the row's SHA-256, is damage in the source (`missing`,
//! `damaged`): recorded, reported, and copied as found.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use mftplus_blob::{BlobKey, BlobStore, ByteStream, TransferId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::database::ChunkRecord;
use super::manifest::PayloadMode;
use super::BackupError;

pub const PAYLOADS_FILE: &str = "payloads.jsonl";
pub const BLOBS_DIR: &str = "blobs";

/// What the backup holds of one chunk.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChunkState {
    /// Copied, matching its row.
    Copied,
    /// Present in the S3 bucket, which keeps it (not copied).
    Referenced,
    /// Its transfer is kept on a hub; the cloud's store never had it.
    SiteLocal,
    /// Swept with its expired transfer after the snapshot.
    Expired,
    /// Absent from the payload store although its transfer had not expired.
    Missing,
    /// Copied as found, but not matching its row's size or SHA-256.
    Damaged,
}

/// One line of `payloads.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PayloadLine {
    pub transfer: String,
    pub idx: i64,
    pub size: i64,
    /// The row's SHA-256.
    pub sha256: String,
    pub state: ChunkState,
    /// SHA-256 of the copy in `blobs/` (equal to `sha256` unless `damaged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
}

impl PayloadLine {
    pub fn describe(&self) -> String {
        format!("chunk {} of transfer {}", self.idx, self.transfer)
    }
}

/// What [`copy_out`] did, for the manifest.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CopyOut {
    pub chunks: u64,
    pub present: u64,
    pub bytes: u64,
    pub site_local: u64,
    pub expired: u64,
    pub damaged: Vec<String>,
}

/// Where chunk `idx` of `transfer` is copied inside the backup `dir`. The id is checked the
/// way the payload store checks it, so a line cannot name a path outside `blobs/`.
pub fn blob_file(dir: &Path, transfer: &str, idx: i64) -> Result<PathBuf, BackupError> {
    let id = TransferId::new(transfer)
        .map_err(|err| BackupError::Invalid(format!("{PAYLOADS_FILE}: {err}")))?;
    if idx < 0 {
        return Err(BackupError::Invalid(format!(
            "{PAYLOADS_FILE}: negative chunk index {idx}"
        )));
    }
    Ok(dir
        .join(BLOBS_DIR)
        .join(id.as_str())
        .join(format!("{idx:016x}.chunk")))
}

fn key(transfer: &str, idx: i64) -> Result<BlobKey, BackupError> {
    let id = TransferId::new(transfer).map_err(|err| BackupError::Payloads(err.to_string()))?;
    Ok(BlobKey::chunk(&id, idx.max(0) as u64))
}

/// Writes `payloads.jsonl` into `out` and, in [`PayloadMode::Copied`], each chunk's bytes.
pub async fn copy_out(
    blobs: &dyn BlobStore,
    chunks: &[ChunkRecord],
    out: &Path,
    mode: PayloadMode,
    now_ms: i64,
) -> Result<CopyOut, BackupError> {
    let path = out.join(PAYLOADS_FILE);
    let mut list = create_private(&path).await?;
    let mut summary = CopyOut::default();
    for chunk in chunks {
        let line = copy_one(blobs, chunk, out, mode, now_ms).await?;
        summary.chunks += 1;
        match line.state {
            ChunkState::Copied | ChunkState::Referenced => {
                summary.present += 1;
                summary.bytes += line.size.max(0) as u64;
            }
            ChunkState::SiteLocal => summary.site_local += 1,
            ChunkState::Expired => summary.expired += 1,
            ChunkState::Missing => summary.damaged.push(format!(
                "{}: absent from the payload store",
                line.describe()
            )),
            ChunkState::Damaged => summary.damaged.push(format!(
                "{}: the stored bytes do not match the row's size or SHA-256",
                line.describe()
            )),
        }
        let mut text = serde_json::to_vec(&line)
            .map_err(|err| BackupError::Invalid(format!("cannot encode a payload line: {err}")))?;
        text.push(b'\n');
        list.write_all(&text)
            .await
            .map_err(|err| BackupError::io(format!("cannot write {}", path.display()), err))?;
    }
    list.flush()
        .await
        .and(list.sync_all().await)
        .map_err(|err| BackupError::io(format!("cannot write {}", path.display()), err))?;
    Ok(summary)
}

async fn copy_one(
    blobs: &dyn BlobStore,
    chunk: &ChunkRecord,
    out: &Path,
    mode: PayloadMode,
    now_ms: i64,
) -> Result<PayloadLine, BackupError> {
    let mut line = PayloadLine {
        transfer: chunk.transfer_id.clone(),
        idx: chunk.idx,
        size: chunk.size,
        sha256: chunk.sha256.clone(),
        state: ChunkState::Copied,
        file_sha256: None,
    };
    if chunk.site.is_some() {
        line.state = ChunkState::SiteLocal;
        return Ok(line);
    }
    let absent = if chunk.expires_at_ms <= now_ms {
        ChunkState::Expired
    } else {
        ChunkState::Missing
    };
    let key = key(&chunk.transfer_id, chunk.idx)?;
    if mode == PayloadMode::Referenced {
        let present = blobs.exists(&key).await.map_err(payload_error)?;
        line.state = if present {
            ChunkState::Referenced
        } else {
            absent
        };
        return Ok(line);
    }
    let Some(reader) = blobs.get_stream(&key).await.map_err(payload_error)? else {
        line.state = absent;
        return Ok(line);
    };
    let file = blob_file(out, &chunk.transfer_id, chunk.idx)?;
    let (len, sha256) = write_stream(reader.stream, &file).await?;
    line.state = if len == chunk.size.max(0) as u64 && sha256 == chunk.sha256 {
        ChunkState::Copied
    } else {
        ChunkState::Damaged
    };
    line.file_sha256 = Some(sha256);
    Ok(line)
}

fn payload_error(err: mftplus_blob::BlobError) -> BackupError {
    BackupError::Payloads(err.to_string())
}

async fn create_private(path: &Path) -> Result<tokio::fs::File, BackupError> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|err| BackupError::io(format!("cannot create {}", path.display()), err))
}

/// Writes a stream into the new file `path` (0600, directories 0700), synced; returns its
/// length and SHA-256.
async fn write_stream(mut stream: ByteStream, path: &Path) -> Result<(u64, String), BackupError> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|err| BackupError::io(format!("cannot create {}", parent.display()), err))?;
    }
    let mut file = create_private(path).await?;
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let failed = |err| BackupError::io(format!("cannot write {}", path.display()), err);
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(payload_error)?;
        hasher.update(&piece);
        len += piece.len() as u64;
        file.write_all(&piece).await.map_err(failed)?;
    }
    file.sync_all().await.map_err(failed)?;
    Ok((len, hex::encode(hasher.finalize())))
}

/// Reads `payloads.jsonl` of the backup `dir`.
pub async fn read_lines(dir: &Path) -> Result<Vec<PayloadLine>, BackupError> {
    let path = dir.join(PAYLOADS_FILE);
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|err| BackupError::io(format!("cannot read {}", path.display()), err))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|err| {
                BackupError::Invalid(format!("{PAYLOADS_FILE} line {}: {err}", n + 1))
            })
        })
        .collect()
}

/// Checks every chunk copy of the backup against the hash its line records, before anything
/// is restored.
pub async fn verify_copies(dir: &Path, lines: &[PayloadLine]) -> Result<u64, BackupError> {
    let mut checked = 0;
    for line in lines {
        let Some(expected) = &line.file_sha256 else {
            continue;
        };
        let path = blob_file(dir, &line.transfer, line.idx)?;
        let shown = path.display().to_string();
        let hashed = tokio::task::spawn_blocking(move || super::manifest::hash_file(&path))
            .await
            .map_err(|err| {
                BackupError::io(format!("hashing {shown}"), std::io::Error::other(err))
            })?;
        match hashed {
            Ok((_, actual)) if &actual == expected => checked += 1,
            Ok((_, actual)) => {
                return Err(BackupError::Tampered(format!(
                    "{shown} ({}) has SHA-256 {actual}, the backup recorded {expected}",
                    line.describe()
                )))
            }
            Err(err) => {
                return Err(BackupError::Tampered(format!(
                    "{shown} ({}) cannot be read: {err}",
                    line.describe()
                )))
            }
        }
    }
    Ok(checked)
}

/// Puts every copied chunk of the backup `dir` into the payload store, each checked against
/// its recorded hash on the way, then syncs them. Returns how many.
pub async fn copy_in(
    blobs: &dyn BlobStore,
    dir: &Path,
    lines: &[PayloadLine],
) -> Result<u64, BackupError> {
    let mut copied = 0;
    let mut transfers = BTreeSet::new();
    for line in lines {
        let Some(expected) = &line.file_sha256 else {
            continue;
        };
        let digest: [u8; 32] = hex::decode(expected)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                BackupError::Invalid(format!("{}: file_sha256 is not a SHA-256", line.describe()))
            })?;
        let path = blob_file(dir, &line.transfer, line.idx)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|err| BackupError::io(format!("cannot read {}", path.display()), err))?;
        let len = file
            .metadata()
            .await
            .map_err(|err| BackupError::io(format!("cannot read {}", path.display()), err))?
            .len();
        blobs
            .put_stream(
                &key(&line.transfer, line.idx)?,
                file_stream(file),
                len,
                &digest,
            )
            .await
            .map_err(|err| BackupError::Payloads(format!("{}: {err}", line.describe())))?;
        transfers.insert(line.transfer.clone());
        copied += 1;
    }
    for transfer in transfers {
        let id = TransferId::new(transfer).map_err(payload_error)?;
        blobs.sync_transfer(&id).await.map_err(payload_error)?;
    }
    Ok(copied)
}

fn file_stream(file: tokio::fs::File) -> ByteStream {
    futures_util::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buffer = vec![0u8; 1024 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(Bytes::from(buffer)), Some(file)))
            }
            Err(err) => Some((Err(mftplus_blob::BlobError::Io(err.to_string())), None)),
        }
    })
    .boxed()
}

/// What [`verify_store`] found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StoreCheck {
    pub verified: u64,
    pub bytes: u64,
    pub site_local: u64,
    pub warnings: Vec<String>,
    pub problems: Vec<String>,
}

/// Reads back every chunk the restored rows promise from the payload store and checks its size
/// and SHA-256 against its row. A chunk the backup recorded as swept with its expired transfer
/// is a warning; anything else absent or different is a problem.
pub async fn verify_store(
    blobs: &dyn BlobStore,
    rows: &[ChunkRecord],
    lines: &[PayloadLine],
) -> Result<StoreCheck, BackupError> {
    let states: HashMap<(&str, i64), ChunkState> = lines
        .iter()
        .map(|line| ((line.transfer.as_str(), line.idx), line.state))
        .collect();
    let mut check = StoreCheck::default();
    for row in rows {
        if row.site.is_some() {
            check.site_local += 1;
            continue;
        }
        let what = format!("chunk {} of transfer {}", row.idx, row.transfer_id);
        let Some(reader) = blobs
            .get_stream(&key(&row.transfer_id, row.idx)?)
            .await
            .map_err(payload_error)?
        else {
            match states.get(&(row.transfer_id.as_str(), row.idx)) {
                Some(ChunkState::Expired) => check.warnings.push(format!(
                    "{what}: no payload (its transfer expired and was swept after the snapshot; the cloud removes the rows at its next sweep)"
                )),
                _ => check.problems.push(format!("{what}: absent from the payload store")),
            }
            continue;
        };
        let limit = row.size.max(0) as u64;
        match mftplus_blob::digest_stream(reader.stream, limit).await {
            Ok(stored) if stored.len == limit && hex::encode(stored.sha256) == row.sha256 => {
                check.verified += 1;
                check.bytes += stored.len;
            }
            Ok(_) | Err(mftplus_blob::BlobError::TooLarge { .. }) => check.problems.push(format!(
                "{what}: the stored bytes do not match the row's size or SHA-256"
            )),
            Err(err) => return Err(payload_error(err)),
        }
    }
    Ok(check)
}
