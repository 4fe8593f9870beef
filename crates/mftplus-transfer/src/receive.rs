//! Receiving one transfer: the header is opened with the receiver's identities, the chunks are
//! decrypted (pipeline in `download.rs`) into a private temporary file beside the target, and
//! the sealed manifest is checked (size, chunk count, digest). Only then may the caller move
//! the file into place ([`TempFile::persist`]); a temporary file not persisted is deleted when
//! dropped, so partial output is never left behind.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mftplus_base::direct_io::DirectWriter;
use mftplus_client::Client;
use mftplus_crypto::stream::{
    read_frame, Decryptor, Frame, Header, Identity, Manifest, StreamError,
};

use crate::download::{Chunks, Sink};
use crate::{OnProgress, TransferError};

/// Opens transfer `id` (complete, `chunk_count` chunks) with `identities`, decrypts it into a
/// temporary file in `dir` and verifies the manifest. Returns the file, ready to persist.
pub async fn to_temp_file(
    client: &Client,
    id: &str,
    chunk_count: u64,
    identities: &[Identity<'_>],
    dir: &Path,
    progress: OnProgress<'_>,
) -> Result<(TempFile, Manifest), TransferError> {
    if chunk_count <= 1 {
        match whole_to_temp_file(client, id, identities, dir, progress).await {
            // A transfer kept on a site hub, or a server without the route: by parts.
            Err(err)
                if matches!(
                    err.code.as_str(),
                    "site_local" | "not_found" | "method_not_allowed"
                ) => {}
            done => return done,
        }
    }
    by_chunks(
        client,
        id,
        Chunks::Count(chunk_count),
        identities,
        dir,
        progress,
    )
    .await
}

/// The header opened, the chunks decrypted into a fresh temporary file in `dir`, the manifest
/// checked.
async fn by_chunks(
    client: &Client,
    id: &str,
    chunks: Chunks,
    identities: &[Identity<'_>],
    dir: &Path,
    progress: OnProgress<'_>,
) -> Result<(TempFile, Manifest), TransferError> {
    let decryptor = open_header(client, id, identities).await?;
    let temp = TempFile::create(dir, id)?;
    let sink: Sink = Box::new(
        DirectWriter::open(&temp.path)
            .map_err(|e| TransferError::io(format!("cannot open {}", temp.path.display()), e))?,
    );
    let manifest = decrypt_into(client, id, chunks, decryptor, sink, progress).await?;
    Ok((temp, manifest))
}

/// As [`to_temp_file`] for a transfer that may still be uploading (decision 0035): the chunks
/// are decrypted as the sender stores them, then the manifest is checked once the sender
/// completes. Gives up with `stalled` when no chunk, or no completion, comes for `stall`; the
/// transfer can then be received whole once complete.
pub async fn follow_to_temp_file(
    client: &Client,
    id: &str,
    identities: &[Identity<'_>],
    dir: &Path,
    stall: Duration,
    progress: OnProgress<'_>,
) -> Result<(TempFile, Manifest), TransferError> {
    by_chunks(
        client,
        id,
        Chunks::Follow { stall },
        identities,
        dir,
        progress,
    )
    .await
}

/// Waits for the sender to complete transfer `id` (its last chunk is stored; the manifest
/// follows in the next request), for at most `stall`.
async fn completed(client: &Client, id: &str, stall: Duration) -> Result<(), TransferError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(5);
    loop {
        let transfer = client.get_transfer(id).await?;
        match transfer.status.as_str() {
            "complete" => return Ok(()),
            "uploading" if started.elapsed() < stall => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
            "uploading" => {
                return Err(TransferError::new(
                    "stalled",
                    "every chunk arrived but the sender did not complete the transfer",
                ))
            }
            other => {
                return Err(TransferError::new(
                    "conflict",
                    format!("the transfer is {other}, not complete"),
                ))
            }
        }
    }
}

/// The most a one-chunk transfer's whole stream may be: a header, the largest sealed chunk,
/// the largest sealed manifest and their frame heads.
const MAX_WHOLE_STREAM: usize = (64 << 10) + (64 << 20) + (64 << 10) + 4096;

/// A one-chunk transfer in one request (`GET …/stream`, the header, the chunk and the manifest
/// in the format's own layout), decrypted and verified into a temporary file off the async
/// thread.
async fn whole_to_temp_file(
    client: &Client,
    id: &str,
    identities: &[Identity<'_>],
    dir: &Path,
    progress: OnProgress<'_>,
) -> Result<(TempFile, Manifest), TransferError> {
    let mut stream = Vec::new();
    client
        .transfer_stream_into(id, MAX_WHOLE_STREAM, &mut stream)
        .await?;
    let (header, used) = Header::parse(&stream).map_err(TransferError::crypto)?;
    let decryptor = open_identities(header, identities)?;
    let temp = TempFile::create(dir, id)?;
    let file = temp.file()?;
    let (manifest, written) =
        tokio::task::spawn_blocking(move || decrypt_frames(decryptor, &stream[used..], file))
            .await
            .map_err(|e| TransferError::new("internal", e.to_string()))??;
    progress(crate::ProgressEvent::Add(written));
    Ok((temp, manifest))
}

/// Opens every chunk frame of `frames` into `file` and checks the manifest frame, which must
/// end the input; the manifest and the bytes written.
fn decrypt_frames(
    mut decryptor: Decryptor,
    mut frames: &[u8],
    mut file: File,
) -> Result<(Manifest, u64), TransferError> {
    let mut written = 0u64;
    loop {
        let frame = read_frame(&mut frames).map_err(TransferError::crypto)?;
        let len = match frame {
            Frame::Chunk { len, .. } | Frame::Manifest { len } => len,
        };
        if len > frames.len() {
            return Err(TransferError::crypto(StreamError::Truncated));
        }
        let (payload, rest) = frames.split_at(len);
        frames = rest;
        match frame {
            Frame::Chunk { last, .. } => {
                let plain = decryptor
                    .open_chunk(payload, last)
                    .map_err(TransferError::crypto)?;
                file.write_all(plain)
                    .map_err(|e| TransferError::io("cannot write the output", e))?;
                written += plain.len() as u64;
            }
            Frame::Manifest { .. } => {
                if !frames.is_empty() {
                    return Err(TransferError::crypto(StreamError::TrailingData));
                }
                let manifest = decryptor.finish(payload).map_err(TransferError::crypto)?;
                return Ok((manifest, written));
            }
        }
    }
}

/// The transfer's header, opened with the first identity that matches.
pub async fn open_header(
    client: &Client,
    id: &str,
    identities: &[Identity<'_>],
) -> Result<Decryptor, TransferError> {
    let header = client.transfer_header(id).await?;
    let (parsed, used) = Header::parse(&header).map_err(TransferError::crypto)?;
    if used != header.len() {
        return Err(TransferError::new(
            "crypto",
            "the stream header is malformed",
        ));
    }
    open_identities(parsed, identities)
}

fn open_identities(
    parsed: Header,
    identities: &[Identity<'_>],
) -> Result<Decryptor, TransferError> {
    Decryptor::new(parsed, identities).map_err(|e| match e {
        StreamError::NoMatchingRecipient => TransferError::new(
            "no_key",
            "the transfer is not encrypted to this key (was it sent before the key pair was \
             last made?); if the sender set a passphrase, give it",
        ),
        other => TransferError::crypto(other),
    })
}

/// Decrypts every chunk into `sink` and checks the sealed manifest (once the sender completed,
/// when following); the sink is flushed.
pub async fn decrypt_into(
    client: &Client,
    id: &str,
    chunks: Chunks,
    decryptor: Decryptor,
    sink: Sink,
    progress: OnProgress<'_>,
) -> Result<Manifest, TransferError> {
    let (decryptor, mut sink, _) =
        crate::download::run(client, id, chunks, decryptor, sink, progress).await?;
    if let Chunks::Follow { stall } = chunks {
        completed(client, id, stall).await?;
    }
    let sealed_manifest = client.transfer_manifest(id).await?;
    let manifest = decryptor
        .finish(&sealed_manifest)
        .map_err(TransferError::crypto)?;
    sink.flush()
        .map_err(|e| TransferError::io("cannot write the output", e))?;
    Ok(manifest)
}

/// `.<id>.<pid>.mftplus-part` in the target directory, 0600, deleted on drop unless persisted.
#[derive(Debug)]
pub struct TempFile {
    pub path: PathBuf,
    persisted: std::cell::Cell<bool>,
}

impl TempFile {
    pub fn create(dir: &Path, id: &str) -> Result<TempFile, TransferError> {
        let path = dir.join(format!(".{id}.{}.mftplus-part", std::process::id()));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| TransferError::io(format!("cannot create {}", path.display()), e))?;
        Ok(TempFile {
            path,
            persisted: std::cell::Cell::new(false),
        })
    }

    fn file(&self) -> Result<File, TransferError> {
        OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| TransferError::io(format!("cannot open {}", self.path.display()), e))
    }

    /// Sets the mode (permission bits only: never setuid, setgid or sticky from someone else's
    /// machine; 0600 when the sender gave none), syncs, and moves the file to `target`.
    /// Without `overwrite` a hard link refuses an existing target atomically (no
    /// check-then-rename race): `exists`.
    pub fn persist(
        &self,
        target: &Path,
        mode: Option<u32>,
        overwrite: bool,
    ) -> Result<(), TransferError> {
        let mode = mode.map(|m| m & 0o777).unwrap_or(0o600);
        let file = self.file()?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .and_then(|_| file.sync_all())
            .map_err(|e| TransferError::io("cannot finish the temporary file", e))?;
        drop(file);
        let exists = |e: std::io::Error| {
            if e.kind() == ErrorKind::AlreadyExists {
                TransferError::new(
                    "exists",
                    format!(
                        "{} already exists; pass --overwrite to replace it",
                        target.display()
                    ),
                )
            } else {
                TransferError::io(format!("cannot create {}", target.display()), e)
            }
        };
        if overwrite {
            if target.is_dir() {
                return Err(TransferError::new(
                    "exists",
                    format!("{} is a directory", target.display()),
                ));
            }
            fs::rename(&self.path, target).map_err(exists)?;
        } else {
            fs::hard_link(&self.path, target).map_err(exists)?;
            let _ = fs::remove_file(&self.path);
        }
        self.persisted.set(true);
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted.get() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_crypto::stream::{
        encrypt_reader_to_writer, ManifestInfo, Recipient, StreamOptions, X25519SecretKey,
        MIN_CHUNK_SIZE,
    };

    /// A whole stream of `data` to `key` in 64 KiB chunks, and where its frames start.
    fn stream_of(data: &[u8], key: &X25519SecretKey) -> (Vec<u8>, usize) {
        let options = StreamOptions {
            chunk_size: MIN_CHUNK_SIZE,
            ..StreamOptions::default()
        };
        let mut stream = Vec::new();
        encrypt_reader_to_writer(
            &mut &data[..],
            &mut stream,
            &options,
            &[Recipient::X25519(key.public_key())],
            ManifestInfo {
                name: "x.bin".into(),
                mode: None,
            },
        )
        .unwrap();
        let (_, used) = Header::parse(&stream).unwrap();
        (stream, used)
    }

    fn decrypt(stream: &[u8], used: usize, key: &X25519SecretKey) -> Result<Vec<u8>, String> {
        let (header, _) = Header::parse(stream).unwrap();
        let decryptor = open_identities(header, &[Identity::X25519(key)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let file = File::create(&out).unwrap();
        decrypt_frames(decryptor, &stream[used..], file).map_err(|e| e.to_string())?;
        Ok(fs::read(out).unwrap())
    }

    #[test]
    fn whole_streams_decrypt_and_any_cut_or_addition_is_refused() {
        let key = X25519SecretKey::generate().unwrap();
        let data: Vec<u8> = (0..MIN_CHUNK_SIZE as usize + 99).map(|i| i as u8).collect();
        let (stream, used) = stream_of(&data, &key);
        assert_eq!(decrypt(&stream, used, &key).unwrap(), data);
        let mut longer = stream.clone();
        longer.push(0);
        assert!(decrypt(&longer, used, &key).is_err(), "trailing data");
        for cut in [1, 5, 20, stream.len() - used - 1] {
            let short = &stream[..stream.len() - cut];
            assert!(decrypt(short, used, &key).is_err(), "cut by {cut}");
        }
        let mut flipped = stream.clone();
        flipped[used + 10] ^= 1;
        assert!(decrypt(&flipped, used, &key).is_err(), "a changed chunk");
    }

    #[test]
    fn temp_file_is_private_and_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        {
            let temp = TempFile::create(dir.path(), "abc").unwrap();
            let mode = fs::metadata(&temp.path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        let target = dir.path().join("out.txt");
        fs::write(&target, b"old").unwrap();
        let temp = TempFile::create(dir.path(), "abc").unwrap();
        fs::write(&temp.path, b"new").unwrap();
        assert_eq!(
            temp.persist(&target, None, false).unwrap_err().code,
            "exists"
        );
        temp.persist(&target, Some(0o4755), true).unwrap();
        drop(temp);
        assert_eq!(fs::read(&target).unwrap(), b"new");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "no setuid from the sender");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
