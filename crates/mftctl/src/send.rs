//! `mftctl send`: encrypts a file chunk by chunk (memory O(chunk size)) to every recipient's
//! public key, the sender's own key and optionally a passphrase, and uploads the sealed chunks
//! in order, each with its SHA-256. The server only ever sees ciphertext.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use mftplus_crypto::stream::{
    Compression, Encryptor, ManifestInfo, Recipient, SealedChunk, StreamOptions, X25519PublicKey,
    MAX_CHUNK_SIZE, MIN_CHUNK_SIZE,
};
use mftplus_types::transfers::{CompleteTransferRequest, CreateTransferRequest, Transfer};
use mftplus_types::ErrorCode;
use serde_json::json;

use crate::apikeys::check_duration;
use crate::cli::SendArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json, note};
use crate::{input, keys};

/// `10MiB`, `64KiB`, `1MB`, `65536`: binary (`KiB`, `MiB`, `GiB`, also `K`/`M`/`G`) or decimal
/// (`kB`, `MB`, `GB`) units, case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, CliError> {
    let bad = || {
        CliError::usage(format!(
            "--chunk-size {text:?}: expected a size such as 64KiB or 10MiB"
        ))
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    number.checked_mul(factor).ok_or_else(bad)
}

fn chunk_size(text: &str) -> Result<u32, CliError> {
    let size = parse_size(text)?;
    if size < u64::from(MIN_CHUNK_SIZE) || size > u64::from(MAX_CHUNK_SIZE) {
        return Err(CliError::usage(format!(
            "--chunk-size {text}: must be between 64KiB and 64MiB"
        )));
    }
    Ok(size as u32)
}

pub fn split_recipients(text: &str) -> Result<Vec<String>, CliError> {
    let mut out: Vec<String> = Vec::new();
    for r in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(r)) {
            out.push(r.to_string());
        }
    }
    if out.is_empty() {
        return Err(CliError::usage("give at least one recipient"));
    }
    Ok(out)
}

/// The passphrase for `--passphrase`: from stdin, or asked twice on the terminal.
pub fn read_passphrase(from_stdin: bool, confirm: bool) -> Result<String, CliError> {
    if from_stdin {
        return input::password_from_stdin().map_err(|e| {
            CliError::usage(
                e.message
                    .replace("--password-stdin", "--passphrase-stdin")
                    .replace("password", "passphrase"),
            )
        });
    }
    if !input::stdin_is_terminal() {
        return Err(CliError::usage(
            "no terminal to ask for the passphrase on; pipe it in with --passphrase-stdin",
        ));
    }
    let first = input::prompt_password("Passphrase: ")?;
    if confirm && input::prompt_password("Passphrase again: ")? != first {
        return Err(CliError::usage("the passphrases do not match"));
    }
    Ok(first)
}

pub async fn send(ctx: &mut Context, args: &SendArgs) -> Result<u8, CliError> {
    if args.resume {
        return Err(CliError::new(
            "unsupported",
            "send --resume is not yet supported; run send again without it to start a new transfer",
        ));
    }
    let chunk_size = chunk_size(&args.chunk_size)?;
    check_duration("--expires", args.expires.as_deref())?;
    let recipients = split_recipients(&args.recipients)?;
    let mut file = File::open(&args.file)
        .map_err(|e| CliError::io(format!("cannot open {}", args.file.display()), e))?;
    let meta = file
        .metadata()
        .map_err(|e| CliError::io(format!("cannot read {}", args.file.display()), e))?;
    if !meta.is_file() {
        return Err(CliError::usage(format!(
            "{} is not a regular file",
            args.file.display()
        )));
    }
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::usage(format!("{} has no file name", args.file.display())))?;
    let passphrase = if args.passphrase {
        Some(read_passphrase(args.passphrase_stdin, true)?)
    } else {
        None
    };

    // Everyone's public key, then our own so we can read our own transfer back.
    let mut public_keys: Vec<X25519PublicKey> = Vec::new();
    for recipient in &recipients {
        let r = recipient.as_str();
        match ctx.call(|c| async move { c.get_user_key(r).await }).await {
            Ok(found) => {
                let key = X25519PublicKey::from_encoded(&found.public_key).map_err(|e| {
                    CliError::new(
                        "key",
                        format!("the server holds an invalid key for {recipient}: {e}"),
                    )
                })?;
                if !public_keys.contains(&key) {
                    public_keys.push(key);
                }
            }
            Err(e) if e.code == ErrorCode::NotFound.as_str() && passphrase.is_some() => {
                note(&format!(
                    "{recipient} has no public key; they will need the passphrase"
                ));
            }
            Err(e) if e.code == ErrorCode::NotFound.as_str() => {
                return Err(CliError::new(
                    "no_key",
                    format!(
                        "{recipient} has no public key registered (or no such user): they must run \
                         `mftctl login` or `mftctl keys init` first, or send with --passphrase"
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    let (own, created) = keys::ensure_registered(ctx).await?;
    if created {
        note(&format!(
            "created your encryption key pair in {}",
            keys::key_path(ctx).display()
        ));
    }
    if !public_keys.contains(&own) {
        public_keys.push(own);
    }
    let mut stanzas: Vec<Recipient<'_>> =
        public_keys.iter().map(|k| Recipient::X25519(*k)).collect();
    if let Some(p) = &passphrase {
        stanzas.push(Recipient::passphrase(p));
    }

    let options = StreamOptions {
        compression: if args.compress {
            Compression::zstd()
        } else {
            Compression::None
        },
        chunk_size,
        ..StreamOptions::default()
    };
    let mut encryptor = Encryptor::new(&options, &stanzas).map_err(stream_error)?;
    let request = CreateTransferRequest {
        recipients: recipients.clone(),
        header: base64::engine::general_purpose::STANDARD.encode(encryptor.header_bytes()),
        chunk_size: u64::from(chunk_size),
        expires: args.expires.clone(),
    };
    let request = &request;
    let transfer = ctx
        .call(|c| async move { c.create_transfer(request.clone()).await })
        .await?;
    let id = transfer.id.clone();

    let mut progress = Progress::new(args.progress, meta.len());
    let result = upload(ctx, &id, &mut encryptor, &mut file, &mut progress).await;
    let result = match result {
        Ok(()) => {
            finish(
                ctx,
                &id,
                encryptor,
                name,
                meta.permissions().mode(),
                &mut progress,
            )
            .await
        }
        Err(e) => Err(e),
    };
    progress.done();
    let (done, size) = match result {
        Ok(done) => done,
        Err(e) => {
            // Without --resume a half upload is useless: stop it so it does not linger.
            let tid = id.as_str();
            let _ = ctx
                .call(|c| async move { c.cancel_transfer(tid).await })
                .await;
            return Err(CliError::new(
                &e.code,
                format!("sending {} failed: {}", args.file.display(), e.message),
            ));
        }
    };
    report(ctx, &done, &args.file.display().to_string(), size)
}

async fn upload(
    ctx: &mut Context,
    id: &str,
    encryptor: &mut Encryptor,
    file: &mut File,
    progress: &mut Progress,
) -> Result<(), CliError> {
    while let Some(chunk) = encryptor.fill_from(file).map_err(stream_error)? {
        put_chunk(ctx, id, &chunk).await?;
        progress.advance(encryptor.bytes_in());
        encryptor.recycle(chunk);
    }
    Ok(())
}

async fn finish(
    ctx: &mut Context,
    id: &str,
    encryptor: Encryptor,
    name: String,
    mode: u32,
    progress: &mut Progress,
) -> Result<(Transfer, u64), CliError> {
    let trailer = encryptor
        .finish(ManifestInfo {
            name,
            mode: Some(mode),
        })
        .map_err(stream_error)?;
    put_chunk(ctx, id, &trailer.last_chunk).await?;
    progress.advance(trailer.manifest.size);
    let request = CompleteTransferRequest {
        manifest: base64::engine::general_purpose::STANDARD.encode(&trailer.sealed_manifest),
    };
    let request = &request;
    let done = ctx
        .call(|c| async move { c.complete_transfer(id, request.clone()).await })
        .await?;
    Ok((done, trailer.manifest.size))
}

async fn put_chunk(ctx: &mut Context, id: &str, chunk: &SealedChunk) -> Result<(), CliError> {
    let sha = mftplus_crypto::sha256_hex(&chunk.bytes);
    let sha = sha.as_str();
    let result: Result<_, CliError> = ctx
        .call(|c| async move {
            c.upload_chunk(id, chunk.index, chunk.bytes.clone(), sha, chunk.last)
                .await
        })
        .await;
    result.map(drop).map_err(|e| {
        CliError::new(
            &e.code,
            format!("upload of chunk {} failed: {}", chunk.index, e.message),
        )
    })
}

fn report(ctx: &Context, transfer: &Transfer, file: &str, size: u64) -> Result<u8, CliError> {
    let to: Vec<&str> = transfer
        .recipients
        .iter()
        .map(|r| r.display.as_str())
        .collect();
    if ctx.json() {
        emit_json(&json!({
            "id": transfer.id,
            "file": file,
            "size": size,
            "transfer": transfer,
        }))?;
    } else {
        emit(&transfer.id)?;
        note(&format!(
            "sent {file} ({size} bytes, {} chunks, {} bytes encrypted) to {}; expires {}",
            transfer.chunk_count.unwrap_or(0),
            transfer.ciphertext_bytes,
            to.join(", "),
            transfer.expires_at
        ));
    }
    Ok(0)
}

pub fn stream_error(e: mftplus_crypto::stream::StreamError) -> CliError {
    CliError::new("crypto", e.to_string())
}

/// `sent 3.0 MiB / 10.0 MiB (30%)` on one rewritten stderr line, only on a terminal.
pub struct Progress {
    enabled: bool,
    total: u64,
    shown: bool,
}

impl Progress {
    pub fn new(wanted: bool, total: u64) -> Progress {
        Progress {
            enabled: wanted && io::stderr().is_terminal(),
            total,
            shown: false,
        }
    }

    pub fn advance(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        let percent = (done * 100).checked_div(self.total).unwrap_or(100);
        let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
        let mut err = io::stderr().lock();
        let _ = write!(
            err,
            "\r{:.1} MiB / {:.1} MiB ({percent}%)",
            mib(done),
            mib(self.total)
        );
        let _ = err.flush();
        self.shown = true;
    }

    pub fn done(&mut self) {
        if self.shown {
            let _ = writeln!(io::stderr().lock());
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10XB").is_err());
        assert!(chunk_size("1KiB").is_err());
        assert!(chunk_size("65MiB").is_err());
        assert_eq!(chunk_size("64KiB").unwrap(), 65536);
    }

    #[test]
    fn recipients() {
        assert_eq!(
            split_recipients(" a@b.c, d@e.f ,A@B.C,").unwrap(),
            vec!["a@b.c".to_string(), "d@e.f".to_string()]
        );
        assert!(split_recipients(" , ").is_err());
    }
}
