//! The restore test: restore a sample of a snapshot's files into a scratch folder and compare
//! them. A file the box still has unchanged (same size and modification time as in the
//! snapshot) must hash the same; one that changed since can only be checked for its size as
//! the snapshot recorded it. restic's own encryption already authenticates what it reads; this
//! proves the path a real restore takes works end to end: key, repository, the restore itself.

use super::restic::{Node, Restic};
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Restores up to `files` files of `snapshot` under `scratch` (emptied first and after) and
/// compares them; a sentence on success, `(code, why)` on failure.
pub async fn restore_test(
    restic: &Restic,
    snapshot: &str,
    scratch: &Path,
    files: usize,
) -> Result<String, (&'static str, String)> {
    let failed = |why: String| ("restore_test_failed", why);
    let nodes = restic
        .ls(snapshot)
        .await
        .map_err(|e| (e.code(), e.to_string()))?;
    let mut candidates: Vec<Node> = nodes.into_iter().filter(|n| n.kind == "file").collect();
    if candidates.is_empty() {
        return Ok("the snapshot holds no files".into());
    }
    candidates.shuffle(&mut rand::thread_rng());
    candidates.truncate(files);
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).map_err(|e| failed(format!("{}: {e}", scratch.display())))?;
    let includes: Vec<String> = candidates.iter().map(|n| n.path.clone()).collect();
    let restored = restic.restore(snapshot, scratch, &includes).await;
    let compared = restored
        .map_err(|e| (e.code(), e.to_string()))
        .and_then(|()| compare_all(&candidates, scratch).map_err(failed));
    let _ = std::fs::remove_dir_all(scratch);
    let (hashed, sized) = compared?;
    Ok(format!(
        "{} file(s) restored: {hashed} identical to the original, {sized} changed since and checked by size",
        hashed + sized
    ))
}

fn compare_all(nodes: &[Node], scratch: &Path) -> Result<(usize, usize), String> {
    let (mut hashed, mut sized) = (0, 0);
    for node in nodes {
        let original = PathBuf::from(&node.path);
        let restored = scratch.join(original.strip_prefix("/").unwrap_or(&original));
        let meta = std::fs::metadata(&restored)
            .map_err(|e| format!("{} was not restored: {e}", node.path))?;
        if meta.len() != node.size {
            return Err(format!(
                "{} restored with {} bytes, the snapshot says {}",
                node.path,
                meta.len(),
                node.size
            ));
        }
        if unchanged_since(&original, node) {
            if sha256_file(&restored)? != sha256_file(&original)? {
                return Err(format!(
                    "{} restored differs from the unchanged original",
                    node.path
                ));
            }
            hashed += 1;
        } else {
            sized += 1;
        }
    }
    Ok((hashed, sized))
}

/// Whether the live file is what the snapshot took: same size and modification time.
fn unchanged_since(original: &Path, node: &Node) -> bool {
    let Ok(meta) = std::fs::metadata(original) else {
        return false;
    };
    let Ok(snap_mtime) = chrono::DateTime::parse_from_rfc3339(&node.mtime) else {
        return false;
    };
    let live = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let snap_nanos = snap_mtime.timestamp_nanos_opt();
    match (live, snap_nanos) {
        (Some(live), Some(snap)) => meta.len() == node.size && live.as_nanos() as i64 == snap,
        _ => false,
    }
}

fn sha256_file(path: &Path) -> Result<[u8; 32], String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}
