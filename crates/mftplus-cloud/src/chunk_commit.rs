//! Group commit of chunk rows (docs/decisions/0008, "Durability and resume").
//!
//! An upload handler stores its chunk's bytes in the blob store, then hands the row to the
//! one committer task of the process and waits. The committer takes everything queued (up to
//! [`MAX_BATCH_ROWS`]), makes those blobs durable with one `sync_objects`, records every row
//! of every transfer in one transaction (`record_chunk_batches`), and only then answers each
//! handler. So a `201` means the row is committed and its blob synced before it, and a crash
//! at any point leaves at worst a blob without a row (re-uploaded on resume), never a row
//! without its blob.
//!
//! The batch is whatever queued while the previous batch was committing: no timer, so an idle
//! cloud commits a lone chunk at once, and a busy one commits many per fsync.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use mftplus_blob::{BlobKey, BlobStore};
use mftplus_store::{ChunkBatch, ChunkOutcome, NewChunk, Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

/// Most rows in one commit: bounds the transaction and the sync of one batch.
pub const MAX_BATCH_ROWS: usize = 64;

/// Rows that may wait for the committer; an upload beyond this waits to enqueue, which slows
/// uploads down rather than growing memory.
const QUEUE_DEPTH: usize = 1024;

/// Why a row was not committed. Per-transfer outcomes keep their meaning for the API; a failed
/// batch is an internal error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("transfer not found")]
    NotFound,
    /// The transfer is no longer `uploading` (cancelled, expired, completed meanwhile).
    #[error("transfer is not uploading: {0}")]
    NotUploading(String),
    /// The blob sync or the transaction failed; nothing of the batch was recorded.
    #[error("committing chunk rows failed: {0}")]
    Failed(String),
    /// The committer is gone (the process is stopping).
    #[error("the chunk committer has stopped")]
    Stopped,
}

/// Counters shown as `mftplus_chunk_commit_*` metrics.
#[derive(Default, Debug)]
pub struct CommitStats {
    /// Transactions committed (each after one blob sync).
    pub batches: AtomicU64,
    /// Rows handed to those transactions.
    pub rows: AtomicU64,
    /// Rows submitted and not yet answered.
    pub pending: AtomicUsize,
}

struct Pending {
    transfer_id: String,
    /// The blob to sync before the row is recorded; `None` for a chunk whose bytes are in the
    /// row itself (decision 0037).
    key: Option<BlobKey>,
    chunk: NewChunk,
    reply: Reply,
}

/// The handle upload handlers submit rows through. Dropping every handle stops the task once
/// the queue is drained.
pub struct ChunkCommitter {
    queue: mpsc::Sender<Pending>,
    stats: Arc<CommitStats>,
    /// `false` holds batches back (tests use it to make batching deterministic).
    open: watch::Sender<bool>,
    task: tokio::task::AbortHandle,
}

impl ChunkCommitter {
    /// Starts the committer task on the current runtime; it counts into `stats`.
    pub fn start(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        stats: Arc<CommitStats>,
    ) -> ChunkCommitter {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let (open, gate) = watch::channel(true);
        let task = tokio::spawn(run(rx, gate, store, blobs, stats.clone())).abort_handle();
        ChunkCommitter {
            queue,
            stats,
            open,
            task,
        }
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Queues the row of a chunk whose blob `key` is stored (or, with `None`, whose bytes the
    /// row carries), and waits until it is committed. If the caller stops waiting, the row is
    /// still committed (its bytes exist, so that is safe).
    pub async fn commit(
        &self,
        transfer_id: &str,
        key: Option<BlobKey>,
        chunk: NewChunk,
    ) -> Result<ChunkOutcome, CommitError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            transfer_id: transfer_id.to_string(),
            key,
            chunk,
            reply,
        };
        self.stats.pending.fetch_add(1, Ordering::SeqCst);
        let _unpend = Unpend(&self.stats);
        self.queue
            .send(pending)
            .await
            .map_err(|_| CommitError::Stopped)?;
        answer.await.map_err(|_| CommitError::Stopped)?
    }

    /// Holds batches back until [`resume`](Self::resume); rows keep queueing.
    pub fn pause(&self) {
        self.open.send_replace(false);
    }

    pub fn resume(&self) {
        self.open.send_replace(true);
    }

    /// Stops the task where it is, like a `kill -9` of the process would stop it: rows queued
    /// or in the batch being committed are answered `Stopped` (for tests of that guarantee).
    pub fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for ChunkCommitter {
    fn drop(&mut self) {
        // Nothing can submit any more; the task ends once the queue is drained.
        self.open.send_replace(true);
    }
}

struct Unpend<'a>(&'a CommitStats);

impl Drop for Unpend<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run(
    mut rx: mpsc::Receiver<Pending>,
    mut gate: watch::Receiver<bool>,
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    stats: Arc<CommitStats>,
) {
    while let Some(first) = rx.recv().await {
        // A closed gate sender means the handle is gone: commit what is left.
        let _ = gate.wait_for(|open| *open).await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_ROWS {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        commit_batch(batch, &*store, &*blobs, &stats).await;
    }
}

async fn commit_batch(
    batch: Vec<Pending>,
    store: &dyn Store,
    blobs: &dyn BlobStore,
    stats: &CommitStats,
) {
    let keys: Vec<BlobKey> = batch.iter().filter_map(|p| p.key.clone()).collect();
    if !keys.is_empty() {
        if let Err(err) = blobs.sync_objects(&keys).await {
            tracing::error!(error = %err, rows = batch.len(), "syncing chunk blobs failed");
            return fail_all(batch.into_iter().map(|p| p.reply), &err.to_string());
        }
    }
    // One entry per transfer, rows in arrival order; `slots` remembers where each row's
    // outcome will be. The rows move into the groups (an inline row carries its bytes).
    let mut groups: Vec<ChunkBatch> = Vec::new();
    let mut slots = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for pending in batch {
        let group = match groups
            .iter()
            .position(|g| g.transfer_id == pending.transfer_id)
        {
            Some(at) => at,
            None => {
                groups.push(ChunkBatch {
                    transfer_id: pending.transfer_id.clone(),
                    chunks: Vec::new(),
                });
                groups.len() - 1
            }
        };
        slots.push((group, groups[group].chunks.len()));
        groups[group].chunks.push(pending.chunk);
        replies.push(pending.reply);
    }
    let results = match store.record_chunk_batches(&groups).await {
        Ok(results) => results,
        Err(err) => {
            tracing::error!(error = %err, rows = replies.len(), "recording chunk rows failed");
            return fail_all(replies, &err.to_string());
        }
    };
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats
        .rows
        .fetch_add(replies.len() as u64, Ordering::Relaxed);
    for (reply, (group, at)) in replies.into_iter().zip(slots) {
        let answer = match &results[group] {
            Ok(outcomes) => outcomes
                .get(at)
                .cloned()
                .ok_or_else(|| CommitError::Failed("the store answered too few outcomes".into())),
            Err(StoreError::NotFound) => Err(CommitError::NotFound),
            Err(StoreError::Conflict(why)) => Err(CommitError::NotUploading(why.clone())),
            Err(other) => Err(CommitError::Failed(other.to_string())),
        };
        // The handler may have gone (client disconnected): the row is committed all the same.
        let _ = reply.send(answer);
    }
}

type Reply = oneshot::Sender<Result<ChunkOutcome, CommitError>>;

fn fail_all(replies: impl IntoIterator<Item = Reply>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(CommitError::Failed(why.to_string())));
    }
}
