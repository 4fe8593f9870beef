//! The download pipeline of a receive: up to [`DOWNLOADS_AHEAD`] chunk downloads run ahead of a
//! blocking thread that authenticates, decrypts and writes, in order.
//!
//! Memory with the default 10 MiB chunks: [`BUFFERS`] download buffers, reused from chunk to
//! chunk (being filled, waiting, being decrypted or written), the decryptor's work buffer, and
//! one decompression buffer with zstd: at most five chunk-sized buffers, whatever the file
//! size. Reusing them, rather than allocating 10 MiB per chunk, matters: fresh allocations of
//! that size fragment the allocator's heaps and peak RSS grows well past the live buffers.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use mftplus_client::Client;
use mftplus_crypto::stream::{chunk_sha256, Decryptor};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{OnProgress, ProgressEvent, TransferError};

/// Chunk downloads running ahead of decryption.
pub const DOWNLOADS_AHEAD: usize = 2;
/// Download buffers in circulation. One more (a buffer each for decrypting and for writing)
/// was measured: no clear gain on two cores, and 10 MiB more peak RSS.
const BUFFERS: usize = DOWNLOADS_AHEAD + 1;

pub type Sink = Box<dyn Write + Send>;

/// A downloaded sealed chunk, its SHA-256 and whether it ends the stream.
type Fetched = (Vec<u8>, [u8; 32], bool);

/// The decrypting and writing stages: done, they hand back the decryptor and the sink.
type Decrypting = JoinHandle<Result<(Decryptor, Sink), TransferError>>;

/// Which chunks a download takes.
#[derive(Debug, Clone, Copy)]
pub enum Chunks {
    /// A complete transfer of this many chunks.
    Count(u64),
    /// A transfer that may still be uploading (decision 0035): every chunk until the one the
    /// server marks last, each asked for again while it is `chunk_pending`. Gives up with
    /// `stalled` when no chunk arrives for `stall`.
    Follow { stall: Duration },
}

/// How often a follower asks again for a chunk not uploaded yet: soon at first (the next chunk
/// of a fast upload is milliseconds away), then at most this far apart.
const FOLLOW_FIRST_WAIT: Duration = Duration::from_millis(5);
const FOLLOW_MAX_WAIT: Duration = Duration::from_millis(100);

/// Downloads the chunks of transfer `id` and writes their plaintext to `sink`. Returns the
/// decryptor (for the manifest check, which alone proves the output whole), the sink and the
/// number of chunks.
pub async fn run(
    client: &Client,
    id: &str,
    chunks: Chunks,
    decryptor: Decryptor,
    sink: Sink,
    progress: OnProgress<'_>,
) -> Result<(Decryptor, Sink, u64), TransferError> {
    let count = match chunks {
        Chunks::Count(count) => count,
        Chunks::Follow { .. } => u64::MAX,
    };
    let (pool_tx, pool) = mpsc::channel::<Vec<u8>>(BUFFERS);
    let mut fetcher = Fetcher {
        client,
        id,
        chunks,
        count,
        max_len: decryptor.max_sealed_chunk_len(),
        pool,
        created: 0,
        next: 0,
        ahead: VecDeque::new(),
    };
    let (tx, writer) = start_decrypting(decryptor, sink, pool_tx)?;
    let mut taken = 0u64;
    let mut fetch_error = None;
    for index in 0..count {
        fetcher.top_up().await;
        let Some(handle) = fetcher.ahead.pop_front() else {
            break;
        };
        let (sealed, sha256, last) = match next_chunk(handle, chunks).await {
            Ok(fetched) => fetched,
            Err(e) => {
                fetch_error = Some(e);
                break;
            }
        };
        let len = sealed.len() as u64;
        if tx.send((sealed, sha256, last)).await.is_err() {
            // The writer stopped: its own error says why.
            break;
        }
        progress(ProgressEvent::Add(len));
        if last {
            taken = index + 1;
            break;
        }
    }
    for handle in fetcher.ahead {
        handle.abort();
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|e| TransferError::new("internal", format!("the decryptor failed: {e}")))?;
    match (fetch_error, written) {
        (_, Err(e)) => Err(e),
        (Some(e), Ok(_)) => Err(e),
        // Chunks that ran out before the last one: the writer saw no last chunk, and the
        // manifest check would refuse the output; say so here.
        (None, Ok(_)) if taken == 0 => Err(TransferError::crypto(
            mftplus_crypto::stream::StreamError::Truncated,
        )),
        (None, Ok((decryptor, sink))) => Ok((decryptor, sink, taken)),
    }
}

/// The downloads running ahead, and the buffers they fill.
struct Fetcher<'a> {
    client: &'a Client,
    id: &'a str,
    chunks: Chunks,
    count: u64,
    max_len: usize,
    /// Buffers handed back by the writer.
    pool: mpsc::Receiver<Vec<u8>>,
    /// Buffers allocated so far, at most [`BUFFERS`].
    created: usize,
    /// The next chunk to start downloading.
    next: u64,
    ahead: VecDeque<JoinHandle<Result<Fetched, TransferError>>>,
}

impl Fetcher<'_> {
    /// Starts downloads until [`DOWNLOADS_AHEAD`] run, or none is left to start, or the writer
    /// stopped (it dropped the pool; its own error says why).
    async fn top_up(&mut self) {
        while self.next < self.count && self.ahead.len() < DOWNLOADS_AHEAD {
            let mut buf = if self.created < BUFFERS {
                self.created += 1;
                Vec::new()
            } else {
                match self.pool.recv().await {
                    Some(buf) => buf,
                    None => return,
                }
            };
            let client = self.client.clone();
            let id = self.id.to_string();
            let (at, chunks, max_len) = (self.next, self.chunks, self.max_len);
            self.ahead.push_back(tokio::spawn(async move {
                let last = fetch(&client, &id, at, chunks, max_len, &mut buf).await?;
                // The manifest's digest needs each sealed chunk's SHA-256: taken here, on a
                // thread of its own, so hashing overlaps decrypting and writing.
                tokio::task::spawn_blocking(move || {
                    let sha256 = chunk_sha256(&buf);
                    (buf, sha256, last)
                })
                .await
                .map_err(|e| TransferError::new("internal", format!("hashing a chunk failed: {e}")))
            }));
            self.next += 1;
        }
    }
}

/// Starts the stages after the downloads: a blocking task that authenticates and decrypts each
/// sealed chunk it is sent, in place, and a thread that writes the plaintext and hands each
/// buffer back to `pool`. The task ends with the decryptor and the sink once the sender drops.
fn start_decrypting(
    decryptor: Decryptor,
    sink: Sink,
    pool: mpsc::Sender<Vec<u8>>,
) -> Result<(mpsc::Sender<Fetched>, Decrypting), TransferError> {
    let (tx, mut rx) = mpsc::channel::<Fetched>(1);
    // Writing to the page cache costs as much CPU as decrypting and hashing (the kernel copy
    // dominates a profile of `receive`), so the two run on their own threads and overlap.
    let (plain_tx, plain_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(0);
    let file_writer = std::thread::Builder::new()
        .name("mftplus-write".into())
        .spawn(move || {
            let mut sink = sink;
            for plain in plain_rx {
                sink.write_all(&plain).map_err(write_error)?;
                let _ = pool.try_send(plain);
            }
            Ok::<_, TransferError>(sink)
        })
        .map_err(|e| TransferError::io("cannot start the writer thread", e))?;
    let writer = tokio::task::spawn_blocking(move || {
        let mut decryptor = decryptor;
        let decrypted = (|| {
            while let Some((mut buffer, sha256, last)) = rx.blocking_recv() {
                // Decrypted in place: the download buffer becomes the plaintext, which then
                // travels to the writer and back to the pool without a copy.
                decryptor
                    .open_chunk_into(&mut buffer, last, Some(sha256))
                    .map_err(TransferError::crypto)?;
                if plain_tx.send(buffer).is_err() {
                    // The writer stopped: its own error says why.
                    break;
                }
            }
            Ok::<_, TransferError>(())
        })();
        drop(plain_tx);
        let written = file_writer
            .join()
            .map_err(|_| TransferError::new("internal", "the writer thread panicked"))?;
        decrypted?;
        Ok::<_, TransferError>((decryptor, written?))
    });
    Ok((tx, writer))
}

/// Chunk `at` into `buf`; whether it is the stream's last.
async fn fetch(
    client: &Client,
    id: &str,
    at: u64,
    chunks: Chunks,
    max_len: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, TransferError> {
    let failed = |e: mftplus_client::ClientError| {
        TransferError::new(
            e.code(),
            format!("download of chunk {at} failed: {}", e.message()),
        )
    };
    if let Chunks::Count(count) = chunks {
        client
            .transfer_chunk_into(id, at, max_len, buf)
            .await
            .map_err(failed)?;
        return Ok(at + 1 == count);
    }
    // No limit here: the caller bounds how long it waits for the chunk it needs next.
    let mut wait = FOLLOW_FIRST_WAIT;
    loop {
        match client.follow_chunk_into(id, at, max_len, buf).await {
            Ok(Some(last)) => return Ok(last),
            Ok(None) => {
                return Err(TransferError::new(
                    "unsupported",
                    "the server does not say which chunk is the last; wait for completion",
                ))
            }
            Err(e) if e.code() == "chunk_pending" => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(FOLLOW_MAX_WAIT);
            }
            Err(e) => return Err(failed(e)),
        }
    }
}

/// Waits for the next chunk's download; when following, no longer than `stall`.
async fn next_chunk(
    handle: JoinHandle<Result<Fetched, TransferError>>,
    chunks: Chunks,
) -> Result<Fetched, TransferError> {
    let joined = match chunks {
        Chunks::Count(_) => handle.await,
        Chunks::Follow { stall } => match tokio::time::timeout(stall, handle).await {
            Ok(joined) => joined,
            Err(_) => {
                return Err(TransferError::new(
                    "stalled",
                    format!(
                        "no chunk arrived for {} s; the sender may have stopped",
                        stall.as_secs()
                    ),
                ))
            }
        },
    };
    joined.map_err(|e| TransferError::new("internal", format!("a download task failed: {e}")))?
}

fn write_error(e: std::io::Error) -> TransferError {
    TransferError::io("cannot write the output", e)
}
