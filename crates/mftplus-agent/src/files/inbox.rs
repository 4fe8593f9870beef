//! The inbox: every complete transfer with this host as a recipient it has not received yet is
//! decrypted into a private temporary file in the inbox folder (a large one already while it
//! uploads, decision 0035), verified, and linked into
//! place under the sender's file name (a free one: `name (2).ext` when taken; never over an
//! existing file), then acknowledged. The name is recorded before the link, so after a crash
//! its presence says the link happened and the file is not received twice.

use super::{FileMover, Pass};
use crate::state_files::InboxState;
use futures_util::StreamExt;
use mftplus_crypto::stream::Identity;
use mftplus_transfer::receive::TempFile;
use mftplus_types::transfers::Transfer;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Transfers taken per pass; more wait for the next one.
const INBOX_PAGE: u32 = 200;

/// One-chunk transfers received at once: a small file is a few round trips and an fsync, so one
/// at a time leaves the link and the disk idle; the order they land in does not matter (each is
/// placed under its own name). Larger transfers come one at a time: each keeps the link busy
/// with its own chunks and holds its download buffers (~30 MiB) while it does.
const SMALL_RECEIVES_IN_FLIGHT: usize = 8;

/// How long a follower waits for the next chunk of an upload, and how long it follows one
/// upload in all, before it leaves the transfer to be received once complete: the inbox
/// receives nothing else meanwhile, so a slow upload (a chunk every few seconds) is not worth
/// holding it for.
const FOLLOW_STALL: Duration = Duration::from_secs(5);
const FOLLOW_AT_MOST: Duration = Duration::from_secs(120);

/// Failed follows remembered (not followed again); past this many the memory starts over.
const UNFOLLOWED_KEPT: usize = 1024;

pub(super) async fn pass(mover: &mut FileMover, inbox: &Path, pass: &mut Pass) {
    remove_stale_parts(inbox);
    let transfers = match mover.client.pending_transfers(INBOX_PAGE).await {
        Ok(t) => t,
        Err(err) => {
            tracing::warn!(
                code = err.code(),
                "cannot list the transfers for the inbox: {err}"
            );
            return;
        }
    };
    let mut waiting = mine(transfers, &mover.host_id);
    // The page was not full: nothing complete is left behind by following uploads now.
    let uploading = if waiting.len() < INBOX_PAGE as usize {
        followable(mover).await
    } else {
        Vec::new()
    };
    waiting.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    let (small, large): (Vec<_>, Vec<_>) = waiting
        .into_iter()
        .partition(|t| t.chunk_count.is_some_and(|n| n <= 1));
    let mover = &*mover;
    // Names a crash left recorded but perhaps not linked stay taken: were another transfer to
    // take one, the crashed transfer would find "its" file there and count itself placed.
    let recorded = match mover.db.placing_inbox_paths() {
        Ok(paths) => paths.into_iter().map(PathBuf::from).collect::<HashSet<_>>(),
        Err(err) => {
            tracing::warn!("cannot read the inbox state: {err}");
            return;
        }
    };
    let placing = Mutex::new(recorded);
    let receive_one = |transfer: Transfer| {
        let placing = &placing;
        async move {
            let result = receive(mover, inbox, placing, &transfer).await;
            (transfer.id, result)
        }
    };
    let outcomes = futures_util::stream::iter(small)
        .map(receive_one)
        .buffer_unordered(SMALL_RECEIVES_IN_FLIGHT)
        .chain(futures_util::stream::iter(large).then(receive_one))
        .chain(futures_util::stream::iter(uploading).then(receive_one));
    let mut outcomes = std::pin::pin!(outcomes);
    let received_before = pass.received.len();
    while let Some((id, result)) = outcomes.next().await {
        match result {
            Ok(Some(path)) => pass.received.push(path),
            Ok(None) => {}
            Err(why) => tracing::warn!(transfer = %id, "inbox: {why}"),
        }
    }
    // A pass that received files looks again at once: more may have completed meanwhile. Only
    // such a pass skips the wait, so transfers that keep failing (or an acknowledgement the
    // server keeps refusing) are not asked for again in a tight loop.
    pass.more_waiting |= pass.received.len() > received_before;
}

/// The transfers of `transfers` addressed to host `host_id` and not yet received by it.
fn mine(transfers: Vec<Transfer>, host_id: &str) -> Vec<Transfer> {
    transfers
        .into_iter()
        .filter(|t| {
            t.recipients
                .iter()
                .any(|r| r.kind == "agent" && r.id == host_id && r.downloaded_at.is_none())
        })
        .collect()
}

/// Uploads to this host worth following while they upload (decision 0035): those with a whole
/// chunk stored already, so more than one chunk (a small file completes before a follower
/// would have caught up), and whose following has not failed before (those are received once
/// complete).
async fn followable(mover: &FileMover) -> Vec<Transfer> {
    let uploads = match mover.client.pending_uploads(INBOX_PAGE).await {
        Ok(t) => t,
        Err(err) => {
            tracing::debug!(
                code = err.code(),
                "cannot list the uploads for the inbox: {err}"
            );
            return Vec::new();
        }
    };
    let unfollowed = lock(&mover.unfollowed);
    let mut uploads: Vec<Transfer> = mine(uploads, &mover.host_id)
        .into_iter()
        .filter(|t| t.site.is_none() && t.ciphertext_bytes >= t.chunk_size)
        .filter(|t| !unfollowed.contains(&t.id))
        .collect();
    uploads.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    uploads
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Receives one transfer; `Ok(None)` when it was placed before and only the acknowledgement
/// was owed.
async fn receive(
    mover: &FileMover,
    inbox: &Path,
    placing: &Mutex<HashSet<PathBuf>>,
    transfer: &Transfer,
) -> Result<Option<PathBuf>, String> {
    let id = transfer.id.as_str();
    let now = || mover.clock.now_ms();
    let known = mover.db.inbox_item(id).map_err(|e| e.to_string())?;
    let (placed, recorded) = match known {
        Some((InboxState::Placed | InboxState::Acknowledged, path)) => {
            (Some(PathBuf::from(path)), None)
        }
        // Linked before the crash, or never: the file's presence tells. Never linked, it goes
        // under the name it recorded: that name is reserved for it (taking another would leave
        // `name (2)` where `name` was due).
        Some((InboxState::Placing, path)) if Path::new(&path).exists() => {
            (Some(PathBuf::from(path)), None)
        }
        Some((InboxState::Placing, path)) => (None, Some(PathBuf::from(path))),
        None => (None, None),
    };
    let fresh = placed.is_none();
    let path = match placed {
        Some(path) => path,
        None => download(mover, inbox, placing, recorded, transfer).await?,
    };
    mover
        .db
        .set_inbox_item(id, InboxState::Placed, &path.display().to_string(), now())
        .map_err(|e| e.to_string())?;
    match mover.client.mark_received(id).await {
        Ok(_) => {
            let _ = mover.db.set_inbox_item(
                id,
                InboxState::Acknowledged,
                &path.display().to_string(),
                now(),
            );
        }
        // The file is in place; the acknowledgement is retried at the next pass.
        Err(err) => {
            tracing::warn!(transfer = %id, code = err.code(), "received, not yet acknowledged: {err}")
        }
    }
    if fresh {
        tracing::info!(transfer = %id, path = %path.display(), "received into the inbox");
    }
    Ok(fresh.then_some(path))
}

/// Downloads and places `transfer`: under `recorded` when a crash cut its placement short,
/// else under a free name.
async fn download(
    mover: &FileMover,
    inbox: &Path,
    placing: &Mutex<HashSet<PathBuf>>,
    recorded: Option<PathBuf>,
    transfer: &Transfer,
) -> Result<PathBuf, String> {
    let id = transfer.id.as_str();
    let identities = [Identity::X25519(&mover.secret)];
    let received = match transfer.chunk_count {
        Some(count) => {
            mftplus_transfer::receive::to_temp_file(
                &mover.client,
                id,
                count,
                &identities,
                inbox,
                &mut |_| {},
            )
            .await
        }
        None => follow(mover, id, &identities, inbox).await,
    };
    let (temp, manifest) = received.map_err(|e| e.to_string())?;
    let name = manifest
        .safe_file_name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("transfer-{id}"));
    // Transfers of the same name received at once must not both pick `name`: a name is free
    // when it is neither on disk nor chosen by another transfer this pass. A chosen name stays
    // taken for the whole pass, placed or not: a placement that failed after its record may
    // still own it.
    let target = match recorded {
        Some(recorded) => recorded,
        None => {
            let mut chosen = placing.lock().unwrap_or_else(|p| p.into_inner());
            let target = free_name(inbox, &name, &chosen);
            chosen.insert(target.clone());
            target
        }
    };
    place(mover, id, temp, &target, manifest.mode).await?;
    Ok(target)
}

/// Records `target`, then links the verified file there. The record's sync is shared with the
/// other transfers received at once, and the file's own sync runs off the async thread.
async fn place(
    mover: &FileMover,
    id: &str,
    temp: TempFile,
    target: &Path,
    mode: Option<u32>,
) -> Result<(), String> {
    mover
        .db
        .record_placing(id, &target.display().to_string(), mover.clock.now_ms())
        .await
        .map_err(|e| e.to_string())?;
    let target = target.to_path_buf();
    tokio::task::spawn_blocking(move || temp.persist(&target, mode, false))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Receives an upload while it goes on (decision 0035); one that cannot be followed (stalled,
/// too slow, cancelled) is remembered, to be received whole once complete.
async fn follow(
    mover: &FileMover,
    id: &str,
    identities: &[Identity<'_>],
    inbox: &Path,
) -> Result<(TempFile, mftplus_crypto::stream::Manifest), mftplus_transfer::TransferError> {
    let mut quiet = |_| {};
    let following = mftplus_transfer::receive::follow_to_temp_file(
        &mover.client,
        id,
        identities,
        inbox,
        FOLLOW_STALL,
        &mut quiet,
    );
    let followed = tokio::time::timeout(FOLLOW_AT_MOST, following)
        .await
        .unwrap_or_else(|_| {
            Err(mftplus_transfer::TransferError::new(
                "stalled",
                "the upload is too slow to follow; it is received once complete",
            ))
        });
    if followed.is_err() {
        let mut unfollowed = lock(&mover.unfollowed);
        if unfollowed.len() >= UNFOLLOWED_KEPT {
            unfollowed.clear();
        }
        unfollowed.insert(id.to_string());
    }
    followed
}

/// `dir/name`, or `dir/stem (2).ext`, `(3)`… when taken (on disk or in `chosen`).
fn free_name(dir: &Path, name: &str, chosen: &HashSet<PathBuf>) -> PathBuf {
    let free = |p: &PathBuf| !p.exists() && !chosen.contains(p);
    let first = dir.join(name);
    if free(&first) {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(free)
        .expect("an unbounded range finds a free name")
}

/// Temporary files a crash left (`.<id>.<pid>.mftplus-part` of a process that is gone).
fn remove_stale_parts(inbox: &Path) {
    let Ok(entries) = std::fs::read_dir(inbox) else {
        return;
    };
    let me = std::process::id().to_string();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(inner) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".mftplus-part"))
        else {
            continue;
        };
        let pid = inner.rsplit('.').next().unwrap_or_default();
        if pid != me {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_names_and_stale_parts() {
        let dir = tempfile::tempdir().unwrap();
        let none = HashSet::new();
        assert_eq!(
            free_name(dir.path(), "a.csv", &none),
            dir.path().join("a.csv")
        );
        std::fs::write(dir.path().join("a.csv"), b"").unwrap();
        std::fs::write(dir.path().join("a (2).csv"), b"").unwrap();
        assert_eq!(
            free_name(dir.path(), "a.csv", &none),
            dir.path().join("a (3).csv")
        );
        let chosen = HashSet::from([dir.path().join("a (3).csv")]);
        assert_eq!(
            free_name(dir.path(), "a.csv", &chosen),
            dir.path().join("a (4).csv")
        );
        std::fs::write(dir.path().join("README"), b"").unwrap();
        assert_eq!(
            free_name(dir.path(), "README", &none),
            dir.path().join("README (2)")
        );
        std::fs::write(dir.path().join(".t1.1.mftplus-part"), b"x").unwrap();
        let mine = format!(".t2.{}.mftplus-part", std::process::id());
        std::fs::write(dir.path().join(&mine), b"x").unwrap();
        remove_stale_parts(dir.path());
        assert!(!dir.path().join(".t1.1.mftplus-part").exists());
        assert!(dir.path().join(mine).exists());
    }
}
