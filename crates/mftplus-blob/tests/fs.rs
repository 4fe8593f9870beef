//! The shared blob contract on the filesystem backend, plus its own promises: file modes, the
//! on-disk layout, crash leftovers never visible, and streams pinned to one version.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use mftplus_blob::contract::{fresh_transfer_id, pattern};
use mftplus_blob::{BlobError, BlobKey, BlobStore, FsBlobStore, TransferId};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn contract_on_fs() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(&dir.path().join("blobs")).unwrap();
    mftplus_blob::contract::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn files_are_0600_and_directories_0700() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested/blobs");
    let store = FsBlobStore::open(&root).unwrap();
    let id = TransferId::new("trf_modes").unwrap();
    let chunk = BlobKey::chunk(&id, 3);
    let header = BlobKey::meta(&id, "header").unwrap();
    store.put(&chunk, pattern(10, 1)).await.unwrap();
    store.put(&header, pattern(10, 2)).await.unwrap();

    assert_eq!(mode(&root), 0o700, "root");
    let transfer_dir = store.transfer_dir(&id);
    assert_eq!(mode(&transfer_dir), 0o700, "transfer directory");
    assert_eq!(
        mode(transfer_dir.parent().unwrap()),
        0o700,
        "fan-out directory"
    );
    assert_eq!(mode(&store.object_path(&chunk)), 0o600, "chunk file");
    assert_eq!(mode(&store.object_path(&header)), 0o600, "metadata file");
}

#[tokio::test]
async fn layout_is_root_fanout_id_hex_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let id = TransferId::new("a").unwrap();
    let path = store.object_path(&BlobKey::chunk(&id, 0x1f));
    assert_eq!(
        path.strip_prefix(dir.path()).unwrap(),
        Path::new("8c/a/000000000000001f.chunk")
    );
    store
        .put(&BlobKey::chunk(&id, 0x1f), pattern(1, 0))
        .await
        .unwrap();
    assert!(path.is_file());
}

#[test]
fn open_refuses_a_file_as_root() {
    let file = tempfile::NamedTempFile::new().unwrap();
    assert!(matches!(
        FsBlobStore::open(file.path()),
        Err(BlobError::Config(_))
    ));
}

/// What a writer killed between `write` and `rename` leaves behind: a temp file next to the
/// object. It must never be read, listed or counted, and the sweep removes it.
#[tokio::test]
async fn leftover_temp_files_are_invisible_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let id = TransferId::new("trf_crash").unwrap();
    let stored = BlobKey::chunk(&id, 0);
    store.put(&stored, pattern(1000, 1)).await.unwrap();

    // A half-written new version of chunk 0 and a half-written chunk 1, named as `put` names
    // its temp files.
    let transfer_dir = store.transfer_dir(&id);
    let leftovers = [
        transfer_dir.join(".0000000000000000.chunk.4000000-1.tmp"),
        transfer_dir.join(".0000000000000001.chunk.4000000-2.tmp"),
    ];
    for leftover in &leftovers {
        std::fs::write(leftover, &pattern(1000, 2)[..300]).unwrap();
    }

    let unwritten = BlobKey::chunk(&id, 1);
    assert!(store.get(&stored).await.unwrap().unwrap() == pattern(1000, 1));
    assert!(store.get(&unwritten).await.unwrap().is_none());
    assert!(!store.exists(&unwritten).await.unwrap());
    assert_eq!(store.list(&id).await.unwrap(), vec![0]);
    store.sync_transfer(&id).await.unwrap();

    assert_eq!(
        store
            .sweep_incomplete(Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "fresh temp files may belong to writes in flight"
    );
    assert_eq!(store.sweep_incomplete(Duration::ZERO).await.unwrap(), 2);
    for leftover in &leftovers {
        assert!(!leftover.exists(), "{} not swept", leftover.display());
    }
    store.put(&unwritten, pattern(5, 5)).await.unwrap();
    assert_eq!(store.list(&id).await.unwrap(), vec![0, 1]);
}

/// A download started before an overwrite or delete finishes with the bytes it started with.
#[tokio::test]
async fn a_stream_reads_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let id = fresh_transfer_id("pin");
    let key = BlobKey::chunk(&id, 0);
    let first = pattern(2 * 1024 * 1024, 1);
    store.put(&key, first.clone()).await.unwrap();

    let reader = store.get_stream(&key).await.unwrap().unwrap();
    store.put(&key, pattern(10, 2)).await.unwrap();
    store.delete_transfer(&id).await.unwrap();
    let pieces: Vec<bytes::Bytes> = reader.stream.try_collect().await.unwrap();
    assert!(
        pieces.concat() == first,
        "stream changed under an overwrite"
    );
}

const CHILD_ENV: &str = "MFTPLUS_BLOB_CRASH_CHILD_ROOT";
const CHILD_OBJECTS: u64 = 8;
const CHILD_OBJECT_LEN: usize = 4 * 1024 * 1024;

/// Not a test on its own: the writer process that `kill_9_mid_write_never_exposes_partial_objects`
/// starts and kills. Without its environment variable it returns at once.
#[tokio::test]
async fn crash_writer_child_process() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = FsBlobStore::open(Path::new(&root)).unwrap();
    let id = TransferId::new("trf_kill9").unwrap();
    // Contents made up front so the loop is all writing: rewriting the same objects forever
    // means that whenever the kill lands, a write is likely in flight.
    let contents: Vec<_> = (0..CHILD_OBJECTS)
        .map(|index| pattern(CHILD_OBJECT_LEN, index))
        .collect();
    for round in 0u64.. {
        let index = round % CHILD_OBJECTS;
        let bytes = contents[index as usize].clone();
        store.put(&BlobKey::chunk(&id, index), bytes).await.unwrap();
        println!("PUT {round}");
    }
}

/// kill -9 of a writer at arbitrary moments: every object visible afterwards is whole, and the
/// sweep clears whatever temp files the kills left.
#[tokio::test]
async fn kill_9_mid_write_never_exposes_partial_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let id = TransferId::new("trf_kill9").unwrap();
    let exe = std::env::current_exe().unwrap();

    // Kill after the 5th put (first writes), the 13th and the 30th (overwrites of objects
    // that already exist): the next put is then usually in flight.
    for (round, target) in [5usize, 13, 30].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_writer_child_process", "--nocapture"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Readiness from the writer's own "PUT" lines, not a fixed sleep; bounded in case it
        // hangs (killing it then ends the read with EOF).
        let stdout = child.stdout.take().unwrap();
        let reading = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter(|line| line.starts_with("PUT "))
                .take(target)
                .count()
        });
        let seen = tokio::time::timeout(Duration::from_secs(60), reading).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let seen = seen.expect("writer made no progress in 60 s").unwrap();
        assert_eq!(seen, target, "writer exited after {seen} puts");

        for index in store.list(&id).await.unwrap() {
            let bytes = store
                .get(&BlobKey::chunk(&id, index))
                .await
                .unwrap()
                .unwrap();
            assert!(
                bytes == pattern(CHILD_OBJECT_LEN, index),
                "round {round}: chunk {index} is partial or mixed ({} bytes)",
                bytes.len()
            );
        }
    }
    let swept = store.sweep_incomplete(Duration::ZERO).await.unwrap();
    eprintln!("kill -9 left {swept} temp file(s) behind");
    let leftovers: Vec<_> = std::fs::read_dir(store.transfer_dir(&id))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "not swept: {leftovers:?}");
}

/// Every file under `root`, at any depth.
fn files_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

/// A refused, failed or abandoned streamed write leaves no temp file: the body's bytes are
/// gone, not just invisible. The abandoned case drops the future while it waits for the next
/// piece, as a server does when the client's connection closes mid-upload.
#[tokio::test]
async fn refused_and_abandoned_streamed_writes_leave_no_temp_file() {
    use mftplus_blob::contract::{pieces, sha256};

    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let id = TransferId::new("trf_refused").unwrap();
    let key = BlobKey::chunk(&id, 0);
    let body = pattern(3 * mftplus_blob::STREAM_WRITE_BATCH, 1);
    let max = body.len() as u64;

    let wrong = store
        .put_stream(&key, pieces(&body, 65_536), max, &sha256(b"other"))
        .await;
    assert!(matches!(wrong, Err(BlobError::DigestMismatch { .. })));
    let over = store
        .put_stream(&key, pieces(&body, 65_536), max - 1, &sha256(&body))
        .await;
    assert!(matches!(over, Err(BlobError::TooLarge { .. })));
    assert_eq!(files_under(dir.path()), Vec::<std::path::PathBuf>::new());

    let (tx, rx) = tokio::sync::mpsc::channel::<mftplus_blob::BlobResult<bytes::Bytes>>(4);
    let stream = tokio_stream_from(rx);
    let write = {
        let store = store.clone();
        let key = key.clone();
        let digest = sha256(&body);
        tokio::spawn(async move { store.put_stream(&key, stream, max, &digest).await })
    };
    // Two batches' worth, so the temp file exists and has been written to.
    for part in 0..2 {
        let batch = mftplus_blob::STREAM_WRITE_BATCH;
        tx.send(Ok(body.slice(part * batch..(part + 1) * batch)))
            .await
            .unwrap();
    }
    let temp_seen = wait_for(|| !files_under(dir.path()).is_empty()).await;
    assert!(temp_seen, "the streamed write never created its temp file");
    write.abort();
    assert!(write.await.unwrap_err().is_cancelled());
    let cleaned = wait_for(|| files_under(dir.path()).is_empty()).await;
    assert!(
        cleaned,
        "an abandoned write left {:?}",
        files_under(dir.path())
    );
    assert!(!store.exists(&key).await.unwrap());
    drop(tx);
}

/// A receiver as a `ByteStream`.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<mftplus_blob::BlobResult<bytes::Bytes>>,
) -> mftplus_blob::ByteStream {
    use futures_util::StreamExt;
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// Polls `done` for up to ten seconds (a write on the blocking pool may still be finishing).
async fn wait_for(done: impl Fn() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}
