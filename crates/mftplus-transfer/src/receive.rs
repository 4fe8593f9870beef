//! Receiving one transfer: the header is opened with the receiver's identities, the chunks are
//! decrypted (pipeline in `download.rs`) into a private temporary file beside the target, and
//! the sealed manifest is checked (size, chunk count, digest). Only then may the caller move
//! the file into place ([`TempFile::persist`]); a temporary file not persisted is deleted when
//! dropped, so partial output is never left behind.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mftplus_base::direct_io::DirectWriter;
use mftplus_client::Client;
use mftplus_crypto::stream::{Decryptor, Header, Identity, Manifest, StreamError};

use crate::download::Sink;
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
    let decryptor = open_header(client, id, identities).await?;
    let temp = TempFile::create(dir, id)?;
    let sink: Sink = Box::new(
        DirectWriter::open(&temp.path)
            .map_err(|e| TransferError::io(format!("cannot open {}", temp.path.display()), e))?,
    );
    let manifest = decrypt_into(client, id, chunk_count, decryptor, sink, progress).await?;
    Ok((temp, manifest))
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
    Decryptor::new(parsed, identities).map_err(|e| match e {
        StreamError::NoMatchingRecipient => TransferError::new(
            "no_key",
            "the transfer is not encrypted to this key (was it sent before the key pair was \
             last made?); if the sender set a passphrase, give it",
        ),
        other => TransferError::crypto(other),
    })
}

/// Decrypts every chunk into `sink` and checks the sealed manifest; the sink is flushed.
pub async fn decrypt_into(
    client: &Client,
    id: &str,
    chunk_count: u64,
    decryptor: Decryptor,
    sink: Sink,
    progress: OnProgress<'_>,
) -> Result<Manifest, TransferError> {
    let (decryptor, mut sink) =
        crate::download::run(client, id, chunk_count, decryptor, sink, progress).await?;
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
