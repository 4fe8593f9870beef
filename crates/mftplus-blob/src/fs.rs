//! [`FsBlobStore`]: objects as files under one root directory.
//!
//! Layout (persisted: changing it orphans existing data):
//! `root/<fan-out>/<transfer_id>/<index as 16 hex digits>.chunk` and `…/<name>.meta`, where
//! `<fan-out>` is two hex digits of a fixed hash of the transfer id. A hash rather than the id's
//! first characters because ids often share a prefix (`trf_…`) or start with a timestamp
//! (UUIDv7), which would put every transfer in one directory.
//!
//! A `put` writes a temp file (`.<object>.<pid>-<n>.tmp`) in the object's directory and renames
//! it over the final name, so a reader sees the old object, no object, or the new one, never a
//! prefix. Temp files left by a crash are never listed or read, and
//! [`sweep_incomplete`](crate::BlobStore::sweep_incomplete) removes them. Directories are
//! created 0700 and files 0600: the ciphertext is useless without keys, but nobody else on the
//! host needs to read or count it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use mftplus_base::direct_io::{DirectReader, DirectWriter};

use crate::key::{parse_chunk_name, BlobKey};
use crate::verify::{Digesting, StoredObject, STREAM_WRITE_BATCH};
use crate::{BlobError, BlobReader, BlobResult, BlobStore, ByteStream, TransferId};

/// Size of the pieces [`BlobStore::get_stream`] yields: large enough to keep syscalls (and,
/// reading past the page cache, disk requests) few, small enough that a slow download holds
/// little memory.
const STREAM_PIECE: usize = 1024 * 1024;

const TEMP_SUFFIX: &str = ".tmp";

/// Distinguishes the temp files of concurrent writers in this process; the pid in the name
/// distinguishes processes sharing a root.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Blob store on the local filesystem. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    root: Arc<PathBuf>,
}

impl FsBlobStore {
    /// Opens (and creates, mode 0700, if missing) the store rooted at `root`. `Config` when
    /// `root` exists but is not a directory.
    pub fn open(root: &Path) -> BlobResult<FsBlobStore> {
        create_private_dirs(root)
            .map_err(|e| BlobError::Config(format!("cannot create {}: {e}", root.display())))?;
        let meta = fs::metadata(root)?;
        if !meta.is_dir() {
            return Err(BlobError::Config(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        Ok(FsBlobStore {
            root: Arc::new(root.to_path_buf()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding a transfer's objects (for operators and tests).
    pub fn transfer_dir(&self, transfer_id: &TransferId) -> PathBuf {
        self.root
            .join(fan_out(transfer_id))
            .join(transfer_id.as_str())
    }

    /// The file an object is stored in (for operators and tests).
    pub fn object_path(&self, key: &BlobKey) -> PathBuf {
        self.transfer_dir(key.transfer_id()).join(key.object_name())
    }
}

/// Two hex digits of FNV-1a-64 over the id's bytes. Part of the persisted layout: never change.
fn fan_out(transfer_id: &TransferId) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in transfer_id.as_str().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:02x}", hash & 0xff)
}

fn create_private_dirs(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

/// Runs blocking filesystem work off the async worker threads.
async fn blocking<T, F>(work: F) -> BlobResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::Io(format!("blocking task failed: {e}")))?
        .map_err(BlobError::from)
}

/// [`blocking`] keeping the `io::Error` (so "not found" can still be told apart).
async fn blocking_io<T, F>(work: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("blocking task failed: {e}")))?
}

/// Treats "not found" as an absent object rather than an error.
fn absent_as_none<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates a fresh temp file (0600) next to the final object. `create_new` never reuses a
/// file, so a stale temp with the same name from an earlier process (same pid after a reboot)
/// just makes us pick the next number.
fn create_temp(dir: &Path, object_name: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{object_name}.{pid}-{n}{TEMP_SUFFIX}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free temp file name")))
}

fn put_blocking(dir: &Path, object_name: &str, bytes: &[u8]) -> io::Result<()> {
    create_private_dirs(dir)?;
    let (temp, mut file) = create_temp(dir, object_name)?;
    // No fsync here: durability is grouped in `sync_transfer`. Rename alone already gives
    // atomicity against a crash of this process, which is what "never serve half an object"
    // needs.
    let written = file
        .write_all(bytes)
        .and_then(|()| fs::rename(&temp, dir.join(object_name)));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// A temp file being filled by `put_stream`. Dropping it unpublished removes the file, so a
/// refused body, a failed write or an abandoned request (the future dropped, also while a
/// write runs on the blocking pool) leaves nothing behind.
struct TempObject {
    dir: PathBuf,
    object_name: String,
    temp: PathBuf,
    /// Past the page cache where the filesystem allows: the object is synced before it counts
    /// anyway, and filling the cache cost more CPU than the rest of an upload (`direct_io`).
    file: DirectWriter,
    digest: Digesting,
    published: bool,
}

impl TempObject {
    fn create(dir: PathBuf, object_name: String, max_len: u64) -> io::Result<TempObject> {
        create_private_dirs(&dir)?;
        let (temp, created) = create_temp(&dir, &object_name)?;
        drop(created);
        let file = DirectWriter::with_stage(&temp, STREAM_WRITE_BATCH)?;
        Ok(TempObject {
            dir,
            object_name,
            temp,
            file,
            digest: Digesting::new(max_len),
            published: false,
        })
    }

    /// Hashes and writes pieces on the blocking pool: both cost CPU or I/O time that must not
    /// stall the async workers.
    fn write_pieces(mut self, pieces: Vec<Bytes>) -> io::Result<TempObject> {
        for piece in &pieces {
            self.digest.update(piece);
            self.file.write_all(piece)?;
        }
        Ok(self)
    }

    /// Renames the temp file over the object if the digest is the expected one. As in `put`,
    /// no fsync: durability is grouped in `sync_objects` / `sync_transfer`.
    fn publish(mut self, expected: &[u8; 32]) -> BlobResult<StoredObject> {
        let digest = std::mem::replace(&mut self.digest, Digesting::new(0));
        let stored = digest.finish(expected)?;
        self.file.flush()?;
        fs::rename(&self.temp, self.dir.join(&self.object_name))?;
        self.published = true;
        Ok(stored)
    }
}

impl Drop for TempObject {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Runs `work` on a temp object on the blocking pool and hands the object back.
async fn on_temp<F>(object: TempObject, work: F) -> BlobResult<TempObject>
where
    F: FnOnce(TempObject) -> io::Result<TempObject> + Send + 'static,
{
    blocking(move || work(object)).await
}

fn list_blocking(dir: &Path) -> io::Result<Vec<u64>> {
    let Some(entries) = absent_as_none(fs::read_dir(dir))? else {
        return Ok(Vec::new());
    };
    let mut indexes = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(index) = entry.file_name().to_str().and_then(parse_chunk_name) {
            indexes.push(index);
        }
    }
    indexes.sort_unstable();
    Ok(indexes)
}

/// A piece read by [`DirectReader`] as `Bytes`, without a copy; its buffer goes back to the
/// pool once the bytes are sent.
fn piece_bytes(piece: mftplus_base::direct_io::bytes_piece::Piece) -> Bytes {
    Bytes::from_owner(piece)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// fsyncs every object of the transfer, then the directories whose entries make them
/// reachable: the transfer's, its fan-out directory, and the root.
fn sync_blocking(root: &Path, dir: &Path) -> io::Result<()> {
    let Some(entries) = absent_as_none(fs::read_dir(dir))? else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_temp_name) || !entry.file_type()?.is_file() {
            continue;
        }
        // A concurrent delete may have removed the file since read_dir: nothing to sync then.
        if let Some(file) = absent_as_none(File::open(entry.path()))? {
            file.sync_all()?;
        }
    }
    sync_dir(dir)?;
    if let Some(fan_out_dir) = dir.parent() {
        sync_dir(fan_out_dir)?;
    }
    sync_dir(root)
}

/// fsyncs the named files (absent ones are skipped: deleted with their transfer), then each
/// directory that holds them, their fan-out directories and the root, each once.
fn sync_paths_blocking(root: &Path, files: &[PathBuf]) -> io::Result<()> {
    let mut dirs: Vec<&Path> = Vec::new();
    for path in files {
        if let Some(file) = absent_as_none(File::open(path))? {
            file.sync_all()?;
        }
        if let Some(dir) = path.parent() {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    let mut fan_outs: Vec<&Path> = Vec::new();
    for dir in &dirs {
        if absent_as_none(sync_dir(dir))?.is_none() {
            continue;
        }
        if let Some(fan_out_dir) = dir.parent().filter(|d| !fan_outs.contains(d)) {
            fan_outs.push(fan_out_dir);
        }
    }
    for fan_out_dir in fan_outs {
        absent_as_none(sync_dir(fan_out_dir))?;
    }
    if !dirs.is_empty() {
        sync_dir(root)?;
    }
    Ok(())
}

/// Removes the temp files directly in `dir` last modified at or before `cutoff`.
fn sweep_dir(dir: &Path, cutoff: SystemTime) -> io::Result<u64> {
    // Directories may be deleted while we walk them (`delete_transfer`).
    let Some(entries) = absent_as_none(fs::read_dir(dir))? else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_str().is_some_and(is_temp_name) {
            continue;
        }
        let Some(meta) = absent_as_none(entry.metadata())? else {
            continue;
        };
        if meta.modified()? <= cutoff && absent_as_none(fs::remove_file(entry.path()))?.is_some() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Walks `root` (probe files of `check`) and every transfer directory two levels below it.
fn sweep_blocking(root: &Path, older_than: Duration) -> io::Result<u64> {
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = sweep_dir(root, cutoff)?;
    for fan_out_dir in fs::read_dir(root)? {
        let fan_out_dir = fan_out_dir?;
        if !fan_out_dir.file_type()?.is_dir() {
            continue;
        }
        let Some(transfer_dirs) = absent_as_none(fs::read_dir(fan_out_dir.path()))? else {
            continue;
        };
        for transfer_dir in transfer_dirs {
            let transfer_dir = transfer_dir?;
            if transfer_dir.file_type()?.is_dir() {
                removed += sweep_dir(&transfer_dir.path(), cutoff)?;
            }
        }
    }
    Ok(removed)
}

#[async_trait]
impl BlobStore for FsBlobStore {
    fn backend(&self) -> &'static str {
        "fs"
    }

    async fn check(&self) -> BlobResult<()> {
        // A write and a remove, as `put` will do: catches read-only mounts and lost permissions.
        let root = self.root.clone();
        blocking(move || {
            let (probe, _file) = create_temp(&root, "check")?;
            fs::remove_file(probe)
        })
        .await
    }

    async fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        let dir = self.transfer_dir(key.transfer_id());
        let object_name = key.object_name();
        blocking(move || put_blocking(&dir, &object_name, &bytes)).await
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        mut body: ByteStream,
        max_len: u64,
        expected_sha256: &[u8; 32],
    ) -> BlobResult<StoredObject> {
        let dir = self.transfer_dir(key.transfer_id());
        let object_name = key.object_name();
        let mut object = blocking(move || TempObject::create(dir, object_name, max_len)).await?;
        let mut pending: Vec<Bytes> = Vec::new();
        let mut pending_len = 0;
        while let Some(piece) = body.next().await {
            let piece = piece?;
            object.digest.admit(piece.len())?;
            pending_len += piece.len();
            pending.push(piece);
            if pending_len >= STREAM_WRITE_BATCH {
                let pieces = std::mem::take(&mut pending);
                pending_len = 0;
                object = on_temp(object, move |o| o.write_pieces(pieces)).await?;
            }
        }
        let expected = *expected_sha256;
        tokio::task::spawn_blocking(move || object.write_pieces(pending)?.publish(&expected))
            .await
            .map_err(|e| BlobError::Io(format!("blocking task failed: {e}")))?
    }

    async fn get(&self, key: &BlobKey) -> BlobResult<Option<Bytes>> {
        let bytes = absent_as_none(tokio::fs::read(self.object_path(key)).await)?;
        Ok(bytes.map(Bytes::from))
    }

    async fn get_stream(&self, key: &BlobKey) -> BlobResult<Option<BlobReader>> {
        // The open handle pins this version of the file: a later rename over it or unlink
        // does not change what the stream returns. Read past the page cache where allowed
        // (`direct_io`): each piece is handed on without a copy.
        let path = self.object_path(key);
        // Opened and read up to the first piece in one trip to the blocking pool, and the end
        // seen without one: a small object (a single piece) costs one thread hand-off, not three.
        let opened = blocking_io(move || {
            let mut reader = DirectReader::open(&path)?;
            let first = reader.next_piece(STREAM_PIECE)?;
            Ok((reader, first))
        });
        let Some((reader, first)) = absent_as_none(opened.await)? else {
            return Ok(None);
        };
        let len = reader.len();
        let rest = stream::try_unfold(reader, |mut reader| async move {
            if reader.at_end() {
                return Ok(None);
            }
            let (piece, reader) = blocking_io(move || {
                let piece = reader.next_piece(STREAM_PIECE)?;
                Ok((piece, reader))
            })
            .await?;
            Ok::<_, io::Error>(piece.map(|p| (piece_bytes(p), reader)))
        });
        let pieces = stream::iter(first.map(|p| Ok(piece_bytes(p)))).chain(rest);
        Ok(Some(BlobReader {
            len,
            stream: pieces.map(|piece| piece.map_err(BlobError::from)).boxed(),
        }))
    }

    async fn exists(&self, key: &BlobKey) -> BlobResult<bool> {
        let meta = absent_as_none(tokio::fs::metadata(self.object_path(key)).await)?;
        Ok(meta.is_some_and(|m| m.is_file()))
    }

    async fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        absent_as_none(tokio::fs::remove_file(self.object_path(key)).await)?;
        Ok(())
    }

    async fn delete_transfer(&self, transfer_id: &TransferId) -> BlobResult<()> {
        let dir = self.transfer_dir(transfer_id);
        blocking(move || absent_as_none(fs::remove_dir_all(dir)).map(drop)).await
    }

    async fn list(&self, transfer_id: &TransferId) -> BlobResult<Vec<u64>> {
        let dir = self.transfer_dir(transfer_id);
        blocking(move || list_blocking(&dir)).await
    }

    async fn sync_transfer(&self, transfer_id: &TransferId) -> BlobResult<()> {
        let root = self.root.clone();
        let dir = self.transfer_dir(transfer_id);
        blocking(move || sync_blocking(&root, &dir)).await
    }

    async fn sync_objects(&self, keys: &[BlobKey]) -> BlobResult<()> {
        let root = self.root.clone();
        let files: Vec<PathBuf> = keys.iter().map(|key| self.object_path(key)).collect();
        blocking(move || sync_paths_blocking(&root, &files)).await
    }

    async fn sweep_incomplete(&self, older_than: Duration) -> BlobResult<u64> {
        let root = self.root.clone();
        blocking(move || sweep_blocking(&root, older_than)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fan-out is part of the on-disk layout; these values must never change.
    #[test]
    fn fan_out_is_stable() {
        let id = |s: &str| TransferId::new(s).unwrap();
        assert_eq!(fan_out(&id("a")), "8c");
        assert_eq!(
            fan_out(&id("trf_0123456789")),
            fan_out(&id("trf_0123456789"))
        );
        let spread: std::collections::HashSet<String> = (0..1000)
            .map(|i| fan_out(&id(&format!("trf_{i}"))))
            .collect();
        assert!(spread.len() > 200, "poor spread: {}", spread.len());
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_name(".000000000000000a.chunk.12-3.tmp"));
        assert!(!is_temp_name("000000000000000a.chunk"));
        assert!(!is_temp_name("header.meta"));
    }
}
