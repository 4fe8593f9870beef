//! Group commit for report ingest: handlers hand their row to one committer task and wait; the
//! task takes everything queued (up to a bound), writes it in one transaction, and answers each
//! handler after the commit. No timer: an idle cloud commits a lone report at once, a busy one
//! many per transaction (the same design as the chunk committer, decision 0008).

use mftplus_store::{StoreError, StoreResult};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Items that may wait; beyond this, submitters wait to enqueue (back-pressure, flat memory).
const QUEUE_DEPTH: usize = 16 * 1024;

type Reply<O> = oneshot::Sender<StoreResult<O>>;

#[derive(Default, Debug)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub items: AtomicU64,
}

pub struct Batcher<I, O> {
    queue: mpsc::Sender<(I, Reply<O>)>,
    stats: Arc<BatchStats>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the committer on the current runtime. `commit` writes one batch and returns one
    /// result per item, in order; its outer error fails the whole batch.
    pub fn start<F, Fut>(max_batch: usize, commit: F) -> Batcher<I, O>
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = StoreResult<Vec<StoreResult<O>>>> + Send,
    {
        let (queue, mut rx) = mpsc::channel::<(I, Reply<O>)>(QUEUE_DEPTH);
        let stats = Arc::new(BatchStats::default());
        let counters = stats.clone();
        let max_batch = max_batch.max(1);
        tokio::spawn(async move {
            let mut pending = Vec::with_capacity(max_batch);
            while rx.recv_many(&mut pending, max_batch).await > 0 {
                let (items, replies): (Vec<I>, Vec<Reply<O>>) = pending.drain(..).unzip();
                counters.batches.fetch_add(1, Ordering::Relaxed);
                counters
                    .items
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
                match commit(items).await {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
                    }
                    Err(err) => {
                        let message = err.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Backend(message.clone())));
                        }
                    }
                }
            }
        });
        Batcher { queue, stats }
    }

    /// Queues the item and waits until its batch is committed.
    pub async fn submit(&self, item: I) -> StoreResult<O> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((item, reply))
            .await
            .map_err(|_| StoreError::Backend("the ingest committer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the ingest committer has stopped".into()))?
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }
}
