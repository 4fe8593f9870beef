//! The upload pipeline of a send: one blocking thread reads and encrypts, a few chunk uploads
//! run at once, and the number of sealed chunks alive at any moment is fixed, so memory stays
//! flat whatever the file size.
//!
//! Memory with the default 10 MiB chunks: the encryptor's plaintext buffer and the one spare
//! it refills next, plus at most [`CHUNKS_AHEAD`] sealed chunks (in flight or waiting for a
//! slot): about 50 MiB of buffers.
//! reqwest sends a `Vec` body without copying it. Each chunk's buffer goes back to the
//! encryptor once its request let go of it, and is filled with the next chunk's plaintext: a
//! fresh 10 MiB buffer per chunk was a quarter of the sending process's CPU, the kernel
//! faulting in and zeroing its pages.
//!
//! On resume the same pipeline runs with the chunks the server already holds: each re-sealed
//! chunk is hashed and compared instead of uploaded (a different hash means the file changed).

use std::collections::HashMap;
use std::io::Read;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use mftplus_client::Client;
use mftplus_crypto::stream::{Encryptor, ManifestInfo, SealedChunk, StreamError, Trailer};
use mftplus_types::transfers::ChunkInfo;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::{OnProgress, ProgressEvent, TransferError};

/// Chunk uploads at once. Two keep the connection busy while the next chunk is sealed; more
/// only cost memory on a loopback or LAN link, where one upload nearly fills the pipe.
pub const UPLOADS_IN_FLIGHT: usize = 2;
/// Sealed chunks allowed to exist besides the encryptor's own buffer.
pub const CHUNKS_AHEAD: usize = UPLOADS_IN_FLIGHT + 1;

/// What the pipeline needs besides the plaintext.
pub struct Upload {
    pub client: Client,
    pub transfer_id: String,
    /// Chunks the server already has (resume), by index.
    pub recorded: HashMap<u64, ChunkInfo>,
    /// Test hook: fail like a dropped connection once this many chunks were uploaded.
    pub interrupt_after: Option<u64>,
}

enum Sealed {
    Chunk { chunk: SealedChunk, plain_end: u64 },
    Done(Box<Trailer>),
}

enum Outcome {
    Uploaded { plain_end: u64 },
    AlreadyThere { plain_end: u64 },
}

/// Encrypts everything `reader` yields and uploads every chunk the server lacks, the last one
/// included. Returns the trailer, whose sealed manifest completes the transfer.
pub async fn run(
    plan: Upload,
    encryptor: Encryptor,
    reader: Box<dyn Read + Send>,
    info: ManifestInfo,
    progress: OnProgress<'_>,
) -> Result<Trailer, TransferError> {
    let (tx, mut rx) = mpsc::channel::<Result<Sealed, StreamError>>(1);
    let (returned_tx, returned_rx) = std_mpsc::channel::<Returned>();
    let producer =
        tokio::task::spawn_blocking(move || produce(encryptor, reader, info, tx, returned_rx));
    let mut uploads = Uploads {
        client: plan.client,
        id: Arc::from(plan.transfer_id.as_str()),
        recorded: Arc::new(plan.recorded),
        returned: returned_tx,
        in_flight: JoinSet::new(),
        uploaded: 0,
        interrupt_after: plan.interrupt_after,
    };
    let mut trailer: Option<Trailer> = None;
    let mut produced_all = false;
    let mut last_sent = false;

    loop {
        if produced_all && uploads.in_flight.is_empty() {
            match &trailer {
                // The last chunk goes through the same path (and check) as the others, once
                // every other chunk is stored.
                Some(t) if !last_sent => {
                    last_sent = true;
                    uploads.start(t.last_chunk.clone(), t.manifest.size);
                    continue;
                }
                _ => break,
            }
        }
        let room = uploads.in_flight.len() < UPLOADS_IN_FLIGHT;
        tokio::select! {
            next = rx.recv(), if room && !produced_all => match next {
                Some(Ok(Sealed::Chunk { chunk, plain_end })) => uploads.start(chunk, plain_end),
                Some(Ok(Sealed::Done(t))) => {
                    trailer = Some(*t);
                    produced_all = true;
                }
                Some(Err(e)) => return Err(read_error(e)),
                None => {
                    // The producer stopped without a result: it panicked.
                    return Err(match producer.await {
                        Err(e) => TransferError::new("internal", format!("the encryptor failed: {e}")),
                        Ok(()) => TransferError::new("internal", "the encryptor stopped early"),
                    });
                }
            },
            done = uploads.in_flight.join_next(), if !uploads.in_flight.is_empty() => {
                uploads.finished(done.expect("guarded by is_empty"), progress)?;
            }
        }
    }
    trailer.ok_or_else(|| TransferError::new("internal", "the encryptor produced no trailer"))
}

/// The chunk uploads under way, and what each new one needs.
struct Uploads {
    client: Client,
    id: Arc<str>,
    recorded: Arc<HashMap<u64, ChunkInfo>>,
    returned: std_mpsc::Sender<Returned>,
    in_flight: JoinSet<Result<Outcome, TransferError>>,
    uploaded: u64,
    interrupt_after: Option<u64>,
}

impl Uploads {
    fn start(&mut self, chunk: SealedChunk, plain_end: u64) {
        self.in_flight.spawn(put(
            self.client.clone(),
            self.id.clone(),
            chunk,
            plain_end,
            self.recorded.clone(),
            self.returned.clone(),
        ));
    }

    /// Accounts for one finished upload: progress, or the error that ends the send.
    fn finished(
        &mut self,
        done: Result<Result<Outcome, TransferError>, tokio::task::JoinError>,
        progress: OnProgress<'_>,
    ) -> Result<(), TransferError> {
        let outcome = done
            .map_err(|e| TransferError::new("internal", format!("an upload task failed: {e}")))??;
        match outcome {
            Outcome::Uploaded { plain_end } => {
                self.uploaded += 1;
                progress(ProgressEvent::At(plain_end));
                if self.interrupt_after.is_some_and(|n| self.uploaded >= n) {
                    return Err(TransferError::new(
                        "interrupted",
                        format!("stopped after {} chunks (test hook)", self.uploaded),
                    ));
                }
            }
            Outcome::AlreadyThere { plain_end } => progress(ProgressEvent::SkipTo(plain_end)),
        }
        Ok(())
    }
}

/// The blocking half: read, seal, hand over; never more than [`CHUNKS_AHEAD`] sealed chunks
/// alive (each reports [`Returned::Done`] once uploaded or skipped, and its buffer comes back
/// for the next chunk once nothing holds it any more).
fn produce(
    mut encryptor: Encryptor,
    mut reader: Box<dyn Read + Send>,
    info: ManifestInfo,
    tx: mpsc::Sender<Result<Sealed, StreamError>>,
    returned: std_mpsc::Receiver<Returned>,
) {
    let mut alive = 0usize;
    let take = |encryptor: &mut Encryptor, what: Returned, alive: &mut usize| match what {
        Returned::Done => *alive -= 1,
        Returned::Buffer(buffer) => encryptor.recycle_buffer(buffer),
    };
    loop {
        while let Ok(what) = returned.try_recv() {
            take(&mut encryptor, what, &mut alive);
        }
        while alive >= CHUNKS_AHEAD {
            match returned.recv() {
                Ok(what) => take(&mut encryptor, what, &mut alive),
                // Every sender is gone: the upload side gave up.
                Err(_) => return,
            }
        }
        let next = match encryptor.fill_from(&mut reader) {
            Ok(Some(chunk)) => {
                alive += 1;
                Ok(Sealed::Chunk {
                    chunk,
                    plain_end: encryptor.bytes_in().saturating_sub(1),
                })
            }
            Ok(None) => {
                let _ = tx.blocking_send(encryptor.finish(info).map(|t| Sealed::Done(Box::new(t))));
                return;
            }
            Err(e) => Err(e),
        };
        let failed = next.is_err();
        if tx.blocking_send(next).is_err() || failed {
            return;
        }
    }
}

async fn put(
    client: Client,
    id: Arc<str>,
    chunk: SealedChunk,
    plain_end: u64,
    recorded: Arc<HashMap<u64, ChunkInfo>>,
    returned: std_mpsc::Sender<Returned>,
) -> Result<Outcome, TransferError> {
    // The encryptor hashed the chunk once, for the manifest's digest and for this.
    let sha = chunk.sha256_hex();
    let SealedChunk {
        index, last, bytes, ..
    } = chunk;
    if let Some(have) = recorded.get(&index) {
        let same = have.sha256 == sha && have.last == last && have.size == bytes.len() as u64;
        let _ = returned.send(Returned::Buffer(bytes));
        let _ = returned.send(Returned::Done);
        if same {
            return Ok(Outcome::AlreadyThere { plain_end });
        }
        return Err(TransferError::new(
            "file_changed",
            format!(
                "chunk {index} on the server differs from the file's chunk {index} now: the \
                 file changed since the interrupted send, so it cannot be resumed; send it again \
                 without --resume"
            ),
        ));
    }
    let bytes = bytes::Bytes::from_owner(GoesBack {
        bytes,
        to: returned.clone(),
    });
    let mut attempt = 0;
    let result = loop {
        let result = client
            .upload_chunk(&id, index, bytes.clone(), &sha, last)
            .await;
        match result {
            Err(e) if attempt < RETRY_DELAYS.len() && worth_retrying(&e) => {
                tokio::time::sleep(RETRY_DELAYS[attempt]).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    // The buffer comes back when the request lets go of it too (usually before this).
    drop(bytes);
    let _ = returned.send(Returned::Done);
    match result {
        Ok(_) => Ok(Outcome::Uploaded { plain_end }),
        Err(e) => Err(TransferError::new(
            e.code(),
            format!("upload of chunk {index} failed: {}", e.message()),
        )),
    }
}

/// What an upload hands back to the producer. `Done` is what bounds memory: one per chunk,
/// sent when its upload ended, whatever still holds its bytes. The buffer follows once nothing
/// does; if it never came (a body kept alive elsewhere) the next chunk would only take a fresh
/// buffer, never wait for it.
enum Returned {
    Done,
    Buffer(Vec<u8>),
}

/// A sealed chunk's buffer lent to its request: when the last reference to it is gone (the
/// body sent, or the request given up), it goes back to the producer. Only ciphertext is in
/// it, so it needs no wipe on the way.
struct GoesBack {
    bytes: Vec<u8>,
    to: std_mpsc::Sender<Returned>,
}

impl AsRef<[u8]> for GoesBack {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for GoesBack {
    fn drop(&mut self) {
        // The producer may be gone (the send ended): then the buffer is simply freed.
        let _ = self
            .to
            .send(Returned::Buffer(std::mem::take(&mut self.bytes)));
    }
}

/// Pauses before each retry of a chunk whose upload got no answer or a server error: a
/// replica restarting behind a balancer, a proxy's 502, a moment of overload. Four tries
/// over 3.5 s, then the send stops and `--resume` (or the outbox's next pass) picks it up.
const RETRY_DELAYS: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
];

/// A retry is safe for any answer (the same chunk again is `already_stored`); it is useful
/// only where another try can go differently: no answer, or a 5xx.
fn worth_retrying(error: &mftplus_client::ClientError) -> bool {
    use mftplus_client::ClientError;
    match error {
        ClientError::Transport(_) => true,
        ClientError::Api { status, .. } => *status >= 500,
        _ => false,
    }
}

fn read_error(e: StreamError) -> TransferError {
    match e {
        StreamError::Io(io) => TransferError::io("cannot read the input", io),
        other => TransferError::new("crypto", other.to_string()),
    }
}
