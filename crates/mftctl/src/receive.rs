//! `mftctl receive`: downloads a transfer's header, chunks (in order) and sealed manifest,
//! decrypts into a private temporary file in the target directory, and only once the manifest
//! verified (size, chunk count, SHA-256) renames it to the sender's file name. On any failure
//! the temporary file is deleted: partial output is never left behind.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mftplus_crypto::stream::{Decryptor, Header, Identity, StreamError, X25519SecretKey};
use mftplus_types::transfers::Transfer;
use serde::Serialize;

use crate::cli::ReceiveArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::keys;
use crate::output::{emit, emit_json, note};
use crate::send::read_passphrase;

#[derive(Debug, Serialize)]
struct Received {
    id: String,
    sender: String,
    name: String,
    path: PathBuf,
    size: u64,
    sha256: String,
}

pub async fn receive(ctx: &mut Context, args: &ReceiveArgs) -> Result<u8, CliError> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(CliError::usage(format!(
            "--dir {}: not a directory",
            dir.display()
        )));
    }
    let secret = keys::load(&keys::key_path(ctx))?;
    let passphrase = if args.passphrase {
        Some(read_passphrase(args.passphrase_stdin, false)?)
    } else {
        None
    };
    if secret.is_none() && passphrase.is_none() {
        return Err(CliError::new(
            "no_key",
            format!(
                "no key pair in {}; run `mftctl login` or `mftctl keys init` (files already \
                 sent to an older key cannot be opened), or use --passphrase",
                keys::key_path(ctx).display()
            ),
        ));
    }

    let transfers = match &args.id {
        Some(id) => {
            let id = id.as_str();
            vec![
                ctx.call(|c| async move { c.get_transfer(id).await })
                    .await?,
            ]
        }
        None => pending(ctx).await?,
    };
    let mut received = Vec::new();
    for transfer in &transfers {
        let got = receive_one(
            ctx,
            transfer,
            dir,
            args.overwrite,
            secret.as_ref(),
            passphrase.as_deref(),
        )
        .await
        .map_err(|e| {
            CliError::new(
                &e.code,
                format!(
                    "transfer {} from {}: {} (nothing was written)",
                    transfer.id, transfer.sender_email, e.message
                ),
            )
        })?;
        if !ctx.json() {
            emit(&format!(
                "received {} ({} bytes) from {} -> {}",
                got.name,
                got.size,
                got.sender,
                got.path.display()
            ))?;
        }
        received.push(got);
    }
    if ctx.json() {
        emit_json(&received)?;
    } else if received.is_empty() {
        note("nothing to receive");
    }
    Ok(0)
}

/// Complete transfers to me as a user recipient that I have not downloaded yet, oldest first.
async fn pending(ctx: &mut Context) -> Result<Vec<Transfer>, CliError> {
    let me = ctx
        .call(|c| async move { c.status().await })
        .await?
        .principal
        .user_id;
    let mut all = ctx
        .call(|c| async move { c.list_transfers(Some("complete")).await })
        .await?;
    all.retain(|t| {
        t.recipients
            .iter()
            .any(|r| r.kind == "user" && r.id == me && r.downloaded_at.is_none())
    });
    all.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(all)
}

async fn receive_one(
    ctx: &mut Context,
    transfer: &Transfer,
    dir: &Path,
    overwrite: bool,
    secret: Option<&X25519SecretKey>,
    passphrase: Option<&str>,
) -> Result<Received, CliError> {
    if transfer.status != "complete" {
        return Err(CliError::new(
            "conflict",
            format!("the transfer is {}, not complete", transfer.status),
        ));
    }
    let temp = TempFile::create(dir, &transfer.id)?;
    // The temporary file is removed on drop unless it was persisted.
    let received = download(ctx, transfer, &temp, dir, overwrite, secret, passphrase).await?;
    Ok(received)
}

async fn download(
    ctx: &mut Context,
    transfer: &Transfer,
    temp: &TempFile,
    dir: &Path,
    overwrite: bool,
    secret: Option<&X25519SecretKey>,
    passphrase: Option<&str>,
) -> Result<Received, CliError> {
    let id = transfer.id.as_str();
    let header = ctx
        .call(|c| async move { c.transfer_header(id).await })
        .await?;
    let (parsed, used) = Header::parse(&header).map_err(crypto)?;
    if used != header.len() {
        return Err(CliError::new("crypto", "the stream header is malformed"));
    }
    let mut identities = Vec::new();
    if let Some(secret) = secret {
        identities.push(Identity::X25519(secret));
    }
    if let Some(p) = passphrase {
        identities.push(Identity::Passphrase(p));
    }
    let mut decryptor = Decryptor::new(parsed, &identities).map_err(|e| match e {
        StreamError::NoMatchingRecipient => CliError::new(
            "no_key",
            "the transfer is not encrypted to your key (was it sent before you last created \
             your key pair?); if the sender set a passphrase, use --passphrase",
        ),
        other => crypto(other),
    })?;
    let count = transfer
        .chunk_count
        .ok_or_else(|| CliError::new("conflict", "the transfer has no chunk count"))?;
    let mut file = temp.file()?;
    for index in 0..count {
        let sealed = ctx
            .call(|c| async move { c.transfer_chunk(id, index).await })
            .await?;
        let plain = decryptor
            .open_chunk(&sealed, index + 1 == count)
            .map_err(crypto)?;
        file.write_all(plain)
            .map_err(|e| CliError::io("cannot write the temporary file", e))?;
    }
    let sealed_manifest = ctx
        .call(|c| async move { c.transfer_manifest(id).await })
        .await?;
    let manifest = decryptor.finish(&sealed_manifest).map_err(crypto)?;
    let name = manifest.safe_file_name().ok_or_else(|| {
        CliError::new(
            "unsafe_name",
            format!(
                "the sender's file name {:?} is not a safe file name",
                manifest.name
            ),
        )
    })?;
    // Permission bits only; never setuid, setgid or sticky from someone else's machine.
    let mode = manifest.mode.map(|m| m & 0o777).unwrap_or(0o600);
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|_| file.sync_all())
        .map_err(|e| CliError::io("cannot finish the temporary file", e))?;
    drop(file);
    let target = dir.join(name);
    temp.persist(&target, overwrite)?;
    Ok(Received {
        id: transfer.id.clone(),
        sender: transfer.sender_email.clone(),
        name: name.to_string(),
        path: target,
        size: manifest.size,
        sha256: manifest.sha256_hex(),
    })
}

fn crypto(e: StreamError) -> CliError {
    let code = match e {
        StreamError::ChunkAuthFailed { .. }
        | StreamError::ManifestAuthFailed
        | StreamError::ManifestMismatch { .. }
        | StreamError::HeaderTampered
        | StreamError::Truncated
        | StreamError::InvalidChunk { .. } => "integrity",
        StreamError::WrongPassphrase => "wrong_passphrase",
        _ => "crypto",
    };
    CliError::new(code, format!("decryption failed: {e}"))
}

/// `.NAME.mftplus-part` in the target directory, 0600, deleted on drop unless persisted.
struct TempFile {
    path: PathBuf,
    persisted: std::cell::Cell<bool>,
}

impl TempFile {
    fn create(dir: &Path, id: &str) -> Result<TempFile, CliError> {
        let path = dir.join(format!(".{id}.{}.mftplus-part", std::process::id()));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| CliError::io(format!("cannot create {}", path.display()), e))?;
        Ok(TempFile {
            path,
            persisted: std::cell::Cell::new(false),
        })
    }

    fn file(&self) -> Result<File, CliError> {
        OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| CliError::io(format!("cannot open {}", self.path.display()), e))
    }

    /// Moves the file into place. Without `overwrite` a hard link refuses an existing target
    /// atomically (no check-then-rename race).
    fn persist(&self, target: &Path, overwrite: bool) -> Result<(), CliError> {
        let exists = |e: std::io::Error| {
            if e.kind() == ErrorKind::AlreadyExists {
                CliError::new(
                    "exists",
                    format!(
                        "{} already exists; pass --overwrite to replace it",
                        target.display()
                    ),
                )
            } else {
                CliError::io(format!("cannot create {}", target.display()), e)
            }
        };
        if overwrite {
            if target.is_dir() {
                return Err(CliError::new(
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
        assert_eq!(temp.persist(&target, false).unwrap_err().code, "exists");
        temp.persist(&target, true).unwrap();
        drop(temp);
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
