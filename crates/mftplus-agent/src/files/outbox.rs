//! An outbox rule: each regular file in the watched folder (not hidden, not a `.done` marker)
//! is sent to the rule's recipients once complete — its size and modification time held still
//! for `settle`, or a `<name>.done` marker exists beside it — then moved to `sent/`; a file the
//! server refuses for good goes to `failed/` with `<name>.reason.txt`. A refusal that may pass
//! (the server away, a timeout) leaves the file where it is for the next pass.
//!
//! Never twice: the file's item (folder, name, size, modification time) is recorded before
//! anything is sent, and the transfer id as soon as the server made it. After a crash an item
//! whose transfer completed is only moved; one whose transfer did not complete is sent again
//! (the unfinished transfer is never delivered: recipients only see complete ones).

use super::{FileMover, OutboxRule, Pass};
use crate::state_files::{OutboxItem, OutboxState};
use futures_util::StreamExt;
use mftplus_crypto::stream::{ManifestInfo, StreamOptions, X25519PublicKey};
use mftplus_transfer::send::{Outgoing, MAX_WHOLE_PLAINTEXT};
use mftplus_transfer::TransferError;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file named `<name>` + this, beside it, says `<name>` is complete.
pub const SETTLED_MARKER: &str = ".done";

/// One-chunk files of one rule sent at once. A small file is a handful of round trips, each
/// waiting on the cloud's commit; several in flight keep both ends busy (1,000 small files took
/// 22 s one at a time). Larger files go one at a time: each keeps the link busy with its own
/// chunks and holds ~40 MiB of buffers while it does, so eight would hold eight times that.
const SMALL_SENDS_IN_FLIGHT: usize = 8;

pub(super) async fn pass(mover: &mut FileMover, rule: &OutboxRule, pass: &mut Pass) {
    let watch = rule.watch.display().to_string();
    match mover.db.open_outbox_items(&watch) {
        Ok(items) => {
            for item in items {
                recover(mover, rule, item, pass).await;
            }
        }
        Err(err) => {
            tracing::warn!(%watch, "cannot read the outbox state: {err}");
            return;
        }
    }
    let mut ready = Vec::new();
    for (path, size, mtime_ns) in settled(mover, rule) {
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let item = match mover.db.outbox_item(&watch, &name, size, mtime_ns) {
            // On the server already (recovery could not move it): moved, not re-sent.
            Ok(Some(sent)) if sent.state == OutboxState::Sent => {
                finish(mover, rule, &sent, pass);
                continue;
            }
            Ok(_) => {
                mover
                    .db
                    .begin_outbox_item(&watch, &name, size, mtime_ns, mover.clock.now_ms())
            }
            Err(err) => Err(err),
        };
        match item {
            Ok(item) => ready.push(item),
            Err(err) => tracing::warn!(%watch, %name, "cannot record the outbox item: {err}"),
        }
    }
    if ready.is_empty() {
        return;
    }
    // The recipients' keys once per pass, not once per file: they change only by a key
    // rotation, and a file sent with the key of a moment ago is still readable by its owner.
    let keys = recipient_keys(mover, &rule.to).await;
    let one_chunk = u64::from(StreamOptions::default().chunk_size);
    let (small, large): (Vec<_>, Vec<_>) = ready.into_iter().partition(|i| i.size <= one_chunk);
    let mover = &*mover;
    let send_one = |item: OutboxItem| {
        let keys = &keys;
        async move {
            let result = match keys {
                Ok(keys) => send_file(mover, rule, &item, keys.clone()).await,
                Err(err) => Err(err.clone()),
            };
            (item, result)
        }
    };
    let outcomes = futures_util::stream::iter(small)
        .map(send_one)
        .buffer_unordered(SMALL_SENDS_IN_FLIGHT)
        .chain(futures_util::stream::iter(large).then(send_one));
    let mut outcomes = std::pin::pin!(outcomes);
    let mut progressed = false;
    while let Some((item, result)) = outcomes.next().await {
        progressed |= result.is_ok() || result.as_ref().is_err_and(permanent);
        record(mover, rule, item, result, pass);
    }
    // Files keep coming while a pass sends: look again at once rather than after the check
    // interval. A pass that moved nothing (the server away) waits, so it never spins.
    pass.more_waiting |= progressed;
}

/// Complete files of the folder, with their size and modification time.
fn settled(mover: &mut FileMover, rule: &OutboxRule) -> Vec<(PathBuf, u64, i64)> {
    let Ok(entries) = std::fs::read_dir(&rule.watch) else {
        return Vec::new();
    };
    let now = mover.clock.now_ms();
    let settle_ms = rule.settle.as_millis() as i64;
    let mut ready = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') || name.ends_with(SETTLED_MARKER) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let stamp = (meta.len(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec());
        let marked = marker(&path).exists();
        let seen = mover
            .watching
            .entry(path.clone())
            .or_insert((stamp.0, stamp.1, now));
        if (seen.0, seen.1) != stamp {
            *seen = (stamp.0, stamp.1, now);
        }
        if marked || now - seen.2 >= settle_ms {
            mover.watching.remove(&path);
            ready.push((path, stamp.0, stamp.1));
        } else {
            let due = seen.2 + settle_ms;
            mover.settle_due_ms = Some(mover.settle_due_ms.map_or(due, |d| d.min(due)));
        }
    }
    ready.sort();
    ready
}

fn marker(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(SETTLED_MARKER);
    path.with_file_name(name)
}

/// An item a crash left in `sending` or `sent`.
async fn recover(mover: &FileMover, rule: &OutboxRule, item: OutboxItem, pass: &mut Pass) {
    if item.state == OutboxState::Sent {
        finish(mover, rule, &item, pass);
        return;
    }
    let Some(transfer_id) = &item.transfer_id else {
        return; // Never reached the server: the scan sends it (its item is reused).
    };
    match mover.client.get_transfer(transfer_id).await {
        Ok(t) if t.status == "complete" => {
            let now = mover.clock.now_ms();
            if mover
                .db
                .set_outbox_item(item.seq, OutboxState::Sent, Some(transfer_id), None, now)
                .is_ok()
            {
                finish(mover, rule, &item, pass);
            }
        }
        // Unfinished: sent again by the scan, under a new transfer.
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(transfer = %transfer_id, code = err.code(), "outbox: cannot look up an interrupted send: {err}")
        }
    }
}

/// Where a send left its file: `sent/`, `failed/`, or in place for the next pass.
fn record(
    mover: &FileMover,
    rule: &OutboxRule,
    item: OutboxItem,
    result: Result<String, TransferError>,
    pass: &mut Pass,
) {
    let path = rule.watch.join(&item.name);
    let now = mover.clock.now_ms();
    match result {
        Ok(transfer_id) => {
            if let Err(err) =
                mover
                    .db
                    .set_outbox_item(item.seq, OutboxState::Sent, Some(&transfer_id), None, now)
            {
                tracing::error!("sent {} but cannot record it: {err}", path.display());
                return;
            }
            let sent = OutboxItem {
                transfer_id: Some(transfer_id),
                ..item
            };
            finish(mover, rule, &sent, pass);
        }
        Err(err) if permanent(&err) => {
            let reason = err.to_string();
            let moved = move_into(&rule.watch, "failed", &item.name, &item.seq.to_string());
            let _ = std::fs::remove_file(marker(&path));
            if let Some(target) = &moved {
                let mut reason_file = target.as_os_str().to_os_string();
                reason_file.push(".reason.txt");
                let _ = std::fs::write(PathBuf::from(reason_file), format!("{reason}\n"));
            }
            let _ =
                mover
                    .db
                    .set_outbox_item(item.seq, OutboxState::Failed, None, Some(&reason), now);
            tracing::warn!(file = %path.display(), "outbox: not sent, moved to failed/: {reason}");
            pass.failed.push((moved.unwrap_or(path), reason));
        }
        Err(err) => {
            tracing::warn!(file = %path.display(), "outbox: will try again: {err}");
        }
    }
}

/// Refusals that sending again cannot cure: a recipient, a file, a request the server rejects.
fn permanent(err: &TransferError) -> bool {
    matches!(
        err.code.as_str(),
        "unknown_recipient"
            | "recipient_not_allowed"
            | "validation"
            | "forbidden"
            | "payload_too_large"
            | "no_key"
            | "file_vanished"
            | "file_changed"
            | "bad_recipient"
    )
}

async fn send_file(
    mover: &FileMover,
    rule: &OutboxRule,
    item: &OutboxItem,
    keys: Vec<X25519PublicKey>,
) -> Result<String, TransferError> {
    let path = &rule.watch.join(&item.name);
    let file = std::fs::File::open(path)
        .map_err(|e| TransferError::new("file_vanished", format!("{}: {e}", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| TransferError::io(path.display(), e))?;
    if meta.len() != item.size || meta.mtime() * 1_000_000_000 + meta.mtime_nsec() != item.mtime_ns
    {
        return Err(TransferError::new(
            "file_changed_again",
            "the file changed since it settled; it is sent once it holds still",
        ));
    }
    let outgoing = Outgoing {
        recipients: rule.to.clone(),
        keys,
        options: StreamOptions::default(),
        expires: rule.expires.clone(),
        info: ManifestInfo {
            name: item.name.clone(),
            mode: Some(meta.mode() & 0o777),
        },
    };
    if item.size <= MAX_WHOLE_PLAINTEXT as u64 {
        return send_small(mover, item, file, &outgoing).await;
    }
    let (created, encryptor) = mftplus_transfer::send::create(&mover.client, &outgoing).await?;
    mover
        .db
        .record_sending(item.seq, &created.id, mover.clock.now_ms())
        .await
        .map_err(|e| TransferError::new("agent_state", e.to_string()))?;
    let transfer = mftplus_transfer::send::upload_and_complete(
        &mover.client,
        &created.id,
        encryptor,
        Box::new(file),
        outgoing.info,
        &mut |_| {},
    )
    .await?;
    Ok(transfer.id)
}

/// A small file in one request under an id recorded first (decision 0037): after a crash the
/// recorded id tells whether the transfer was made, as the server's id does for larger files.
async fn send_small(
    mover: &FileMover,
    item: &OutboxItem,
    mut file: std::fs::File,
    outgoing: &Outgoing,
) -> Result<String, TransferError> {
    let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(item.size as usize));
    std::io::Read::read_to_end(&mut file, &mut plaintext)
        .map_err(|e| TransferError::new("file_vanished", format!("{}: {e}", item.name)))?;
    if plaintext.len() as u64 != item.size {
        return Err(TransferError::new(
            "file_changed_again",
            "the file changed since it settled; it is sent once it holds still",
        ));
    }
    let id = mftplus_transfer::send::new_transfer_id();
    mover
        .db
        .record_sending(item.seq, &id, mover.clock.now_ms())
        .await
        .map_err(|e| TransferError::new("agent_state", e.to_string()))?;
    let transfer =
        mftplus_transfer::send::send_whole(&mover.client, outgoing, &id, &plaintext).await?;
    Ok(transfer.id)
}

/// The recipients' public keys: users' from their key, hosts' (`host:<id>`) from theirs.
async fn recipient_keys(
    mover: &FileMover,
    recipients: &[String],
) -> Result<Vec<X25519PublicKey>, TransferError> {
    let mut keys = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        let encoded = match recipient.strip_prefix("host:") {
            Some(host_id) => mover.client.host_transfer_key(host_id).await,
            None => mover
                .client
                .get_user_key(recipient)
                .await
                .map(|found| found.public_key),
        }
        .map_err(|e| match e.code() {
            "not_found" => TransferError::new(
                "no_key",
                format!("{recipient} has no public key to encrypt to"),
            ),
            _ => TransferError::from(e),
        })?;
        let key = X25519PublicKey::from_encoded(&encoded).map_err(|e| {
            TransferError::new("bad_recipient", format!("the key of {recipient}: {e}"))
        })?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Moves a sent file to `sent/` and drops its marker; the item becomes `done`.
fn finish(mover: &FileMover, rule: &OutboxRule, item: &OutboxItem, pass: &mut Pass) {
    let path = rule.watch.join(&item.name);
    let transfer_id = item.transfer_id.clone().unwrap_or_default();
    let suffix = transfer_id.chars().take(8).collect::<String>();
    let moved = if path.exists() {
        move_into(&rule.watch, "sent", &item.name, &suffix)
    } else {
        None
    };
    let _ = std::fs::remove_file(marker(&path));
    let now = mover.clock.now_ms();
    let _ = mover.db.set_outbox_item(
        item.seq,
        OutboxState::Done,
        item.transfer_id.as_deref(),
        None,
        now,
    );
    if item.state != OutboxState::Done {
        tracing::info!(file = %path.display(), transfer = %transfer_id, "outbox: sent");
        pass.sent.push((moved.unwrap_or(path), transfer_id));
    }
}

/// `watch/<folder>/<name>`, or `<name>.<suffix>` when that is taken; `None` when the move failed.
fn move_into(watch: &Path, folder: &str, name: &str, suffix: &str) -> Option<PathBuf> {
    let dir = watch.join(folder);
    if let Err(err) = std::fs::create_dir_all(&dir) {
        tracing::warn!("cannot create {}: {err}", dir.display());
        return None;
    }
    let mut target = dir.join(name);
    if target.exists() {
        target = dir.join(format!("{name}.{suffix}"));
    }
    match std::fs::rename(watch.join(name), &target) {
        Ok(()) => Some(target),
        Err(err) => {
            tracing::warn!("cannot move {name} to {}: {err}", dir.display());
            None
        }
    }
}
