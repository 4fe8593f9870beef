//! `mftctl send`: encrypts a file (or standard input) chunk by chunk to every recipient's
//! public key, the sender's own key and optionally a passphrase, and uploads the sealed chunks,
//! each with its SHA-256, through the pipeline in `upload.rs`. The server only ever sees
//! ciphertext. A send from a file saves resume state first (`upload_state.rs`), and on failure
//! keeps the transfer and prints the `send --resume` line that continues it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use mftplus_crypto::stream::{
    CipherId, Compression, Encryptor, ManifestInfo, Recipient, StreamOptions, Trailer,
    X25519PublicKey, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE,
};
use mftplus_types::transfers::{
    ChunkInfo, CompleteTransferRequest, CreateTransferRequest, Transfer, HOST_RECIPIENT_PREFIX,
};
use mftplus_types::ErrorCode;
use serde_json::json;

use crate::apikeys::check_duration;
use crate::cli::{CipherArg, SendArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json, note};
use crate::progress::Progress;
use crate::upload_state::{self, FileStamp, UploadState, STATE_VERSION};
use crate::{input, keys};
use mftplus_transfer::upload::{self, Upload};

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

/// The passphrase when one was `asked` for (`--passphrase`, `--link-passphrase`); `None`
/// otherwise.
pub fn passphrase_if(
    asked: bool,
    from_stdin: bool,
    file: Option<&Path>,
    confirm: bool,
) -> Result<Option<String>, CliError> {
    asked
        .then(|| read_passphrase(from_stdin, file, confirm))
        .transpose()
}

/// The passphrase for `--passphrase`: from a private file, from stdin, or asked (twice when
/// `confirm`) on the terminal.
fn read_passphrase(
    from_stdin: bool,
    file: Option<&Path>,
    confirm: bool,
) -> Result<String, CliError> {
    if let Some(path) = file {
        return input::secret_from_file(path, "--passphrase-file");
    }
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
    let from_stdin = args.file.as_os_str() == "-";
    if args.resume {
        if from_stdin {
            return Err(CliError::new(
                "not_resumable",
                "a send from standard input cannot be resumed (the data cannot be read again); \
                 send from a file to be able to resume",
            ));
        }
        return crate::resume::resume(ctx, args).await;
    }
    let chunk_size = chunk_size(&args.chunk_size)?;
    check_duration("--expires", args.expires.as_deref())?;
    let link = crate::links::LinkPlan::from_args(args)?;
    let recipients = crate::links::recipients(ctx, &args.recipients, link.is_some()).await?;
    if from_stdin && args.passphrase_stdin {
        return Err(CliError::usage(
            "--passphrase-stdin cannot be used when the data comes from standard input; use \
             --passphrase-file",
        ));
    }
    let (reader, source) = Source::open(args)?;
    let passphrase = passphrase_if(
        args.passphrase,
        args.passphrase_stdin,
        args.passphrase_file.as_deref(),
        true,
    )?;
    let (public_keys, keyless) = recipient_keys(ctx, &recipients, passphrase.is_some()).await?;
    let stanzas = stanzas(&public_keys, passphrase.as_deref(), link.as_ref());
    let options = StreamOptions {
        cipher: cipher_id(args.cipher),
        compression: if args.compress {
            Compression::zstd()
        } else {
            Compression::None
        },
        chunk_size,
    };
    let encryptor = Encryptor::new(&options, &stanzas).map_err(stream_error)?;
    let header = base64::engine::general_purpose::STANDARD.encode(encryptor.header_bytes());
    let request = CreateTransferRequest {
        recipients: recipients.clone(),
        header: header.clone(),
        chunk_size: u64::from(chunk_size),
        expires: args.expires.clone(),
        awaiting_grant: keyless,
        id: None,
        whole: None,
    };
    let request = &request;
    let transfer = ctx
        .call(|c| async move { c.create_transfer(request.clone()).await })
        .await?;
    let made = crate::links::make(ctx, link.as_ref(), &transfer.id).await?;
    crate::grants::after_send(ctx, &transfer);
    let sending = Sending {
        // Written before the first chunk leaves, so any interruption from here on can resume.
        saved: save_resume_state(
            ctx,
            args,
            &transfer.id,
            &source,
            &options,
            recipients,
            header,
        ),
        id: transfer.id,
        made,
    };
    let result = upload_source(ctx, &sending.id, encryptor, reader, &source, args.progress).await;
    conclude(ctx, args, &source, sending, result).await
}

/// Who can open the stream: each public key, the passphrase, the share link's secret.
fn stanzas<'a>(
    public_keys: &[X25519PublicKey],
    passphrase: Option<&'a str>,
    link: Option<&'a crate::links::LinkPlan>,
) -> Vec<Recipient<'a>> {
    let mut stanzas: Vec<Recipient<'a>> =
        public_keys.iter().map(|k| Recipient::X25519(*k)).collect();
    stanzas.extend(passphrase.map(Recipient::passphrase));
    stanzas.extend(link.map(|plan| plan.recipient()));
    stanzas
}

/// A send whose transfer exists on the server.
struct Sending {
    id: String,
    /// The folder holding its resume state, when that was saved.
    saved: Option<PathBuf>,
    /// Its share link, for `--link`.
    made: Option<crate::links::MadeLink>,
}

/// Saves what `send --resume` needs for a send from a regular file; `None` (with a warning
/// when saving failed) where there is nothing to resume from.
fn save_resume_state(
    ctx: &Context,
    args: &SendArgs,
    transfer_id: &str,
    source: &Source,
    options: &StreamOptions,
    recipients: Vec<String>,
    header: String,
) -> Option<PathBuf> {
    let (Some((path, stamp)), Some(dir)) = (&source.stamp, &ctx.state_dir) else {
        return None;
    };
    let state = UploadState {
        version: STATE_VERSION,
        transfer_id: transfer_id.to_string(),
        server: ctx.client().base_url().to_string(),
        path: path.clone(),
        size: stamp.size,
        mtime_secs: stamp.mtime_secs,
        mtime_nanos: stamp.mtime_nanos,
        chunk_size: options.chunk_size,
        cipher: args.cipher.name().to_string(),
        compression: compression_name(options.compression).to_string(),
        zstd_level: zstd_level(options.compression),
        recipients,
        name: source.name.clone(),
        mode: source.mode,
        header,
    };
    match upload_state::save(dir, &state) {
        Ok(_) => Some(dir.clone()),
        Err(e) => {
            note(&format!(
                "warning: cannot save the resume state ({e}); an interrupted send will have \
                 to start over"
            ));
            None
        }
    }
}

/// Uploads what `reader` gives of a new send's `source` and completes it.
async fn upload_source(
    ctx: &mut Context,
    id: &str,
    encryptor: Encryptor,
    reader: Box<dyn Read + Send>,
    source: &Source,
    show_progress: bool,
) -> Result<(Transfer, Trailer), CliError> {
    let mut progress = Progress::new("sent", source.size, show_progress, ctx.json());
    let info = ManifestInfo {
        name: source.name.clone(),
        mode: source.mode,
    };
    let recorded = HashMap::new();
    upload_and_complete(ctx, id, encryptor, reader, info, recorded, &mut progress).await
}

/// Encrypts and uploads every chunk `reader` gives that the server has not `recorded` yet,
/// then completes transfer `id`: the completed transfer and the stream's trailer. Shared by a
/// new send and a resumed one.
pub async fn upload_and_complete(
    ctx: &mut Context,
    id: &str,
    encryptor: Encryptor,
    reader: Box<dyn Read + Send>,
    info: ManifestInfo,
    recorded: HashMap<u64, ChunkInfo>,
    progress: &mut Progress,
) -> Result<(Transfer, Trailer), CliError> {
    let plan = Upload {
        client: ctx.client(),
        transfer_id: id.to_string(),
        recorded,
        interrupt_after: ctx.interrupt_send_after,
    };
    let uploaded = upload::run(plan, encryptor, reader, info, &mut |e| progress.event(e))
        .await
        .map_err(CliError::from);
    let result = match uploaded {
        Ok(trailer) => complete(ctx, id, &trailer).await.map(|t| (t, trailer)),
        Err(e) => Err(e),
    };
    progress.finish();
    result
}

/// What the user is told once the upload ended: the report of a complete send, or why it
/// failed and how to resume it (the transfer is kept when it can be resumed, else cancelled).
async fn conclude(
    ctx: &mut Context,
    args: &SendArgs,
    source: &Source,
    sending: Sending,
    result: Result<(Transfer, Trailer), CliError>,
) -> Result<u8, CliError> {
    let Sending { id, saved, made } = sending;
    let e = match result {
        Ok((done, trailer)) => {
            if let Some(dir) = &saved {
                upload_state::remove(dir, &id);
            }
            let size = trailer.manifest.size;
            return match &made {
                Some(made) => crate::links::report(ctx, &done, &source.label, size, made),
                None => report(ctx, &done, &source.label, size),
            };
        }
        Err(e) => e,
    };
    if saved.is_some() {
        if let Some(made) = &made {
            note(&format!(
                "the share link works once the send is resumed and complete: {}",
                made.url
            ));
        }
        note(&format!(
            "transfer {id} is kept on the server; to continue it run:
  {}",
            resume_hint(ctx, args)
        ));
    } else {
        // Nothing to resume from: a half upload is useless, so stop it from lingering.
        let tid = id.as_str();
        let _ = ctx
            .call(|c| async move { c.cancel_transfer(tid).await })
            .await;
    }
    Err(CliError::new(
        &e.code,
        format!("sending {} failed: {}", source.label, e.message),
    ))
}
/// What the plaintext is: how messages and the manifest name it, and whether it can resume.
struct Source {
    /// How messages name it.
    label: String,
    name: String,
    mode: Option<u32>,
    size: Option<u64>,
    /// Canonical path and stamp of a regular file: what makes it resumable.
    stamp: Option<(PathBuf, FileStamp)>,
}

impl Source {
    /// The plaintext's reader, and what it is.
    fn open(args: &SendArgs) -> Result<(Box<dyn Read + Send>, Source), CliError> {
        if args.file.as_os_str() == "-" {
            let name = args.name.clone().ok_or_else(|| {
                CliError::usage(
                    "sending standard input (`-`) needs --name: the file name recipients get",
                )
            })?;
            let source = Source {
                label: "standard input".into(),
                name,
                mode: None,
                size: None,
                stamp: None,
            };
            return Ok((Box::new(io::stdin()), source));
        }
        let shown = args.file.display().to_string();
        let file =
            File::open(&args.file).map_err(|e| CliError::io(format!("cannot open {shown}"), e))?;
        let meta = file
            .metadata()
            .map_err(|e| CliError::io(format!("cannot read {shown}"), e))?;
        if !meta.is_file() {
            return Err(CliError::usage(format!("{shown} is not a regular file")));
        }
        let name = match &args.name {
            Some(name) => name.clone(),
            None => args
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| CliError::usage(format!("{shown} has no file name")))?,
        };
        let path = std::fs::canonicalize(&args.file)
            .map_err(|e| CliError::io(format!("cannot resolve {shown}"), e))?;
        let source = Source {
            label: shown,
            name,
            mode: Some(meta.permissions().mode() & 0o7777),
            size: Some(meta.len()),
            stamp: Some((path, FileStamp::of(&meta))),
        };
        Ok((Box::new(file), source))
    }
}

/// Everyone's public key, then our own so we can read our own transfer back (and resume it),
/// and the recipients without a key: without a passphrase they wait for our grant (decision
/// 0022); the server says which of them are no users at all (`unknown_recipient`).
async fn recipient_keys(
    ctx: &mut Context,
    recipients: &[String],
    with_passphrase: bool,
) -> Result<(Vec<X25519PublicKey>, Vec<String>), CliError> {
    let mut public_keys: Vec<X25519PublicKey> = Vec::new();
    let mut keyless = Vec::new();
    for recipient in recipients {
        let r = recipient.as_str();
        if let Some(host_id) = r.trim().strip_prefix(HOST_RECIPIENT_PREFIX) {
            let key = host_key(ctx, host_id.trim()).await?;
            if !public_keys.contains(&key) {
                public_keys.push(key);
            }
            continue;
        }
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
            Err(e) if e.code == ErrorCode::NotFound.as_str() && with_passphrase => {
                note(&format!(
                    "{recipient} has no public key; they will need the passphrase"
                ));
            }
            Err(e) if e.code == ErrorCode::NotFound.as_str() => keyless.push(recipient.clone()),
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
    Ok((public_keys, keyless))
}

/// A host recipient's (`host:<host_id>`, decision 0029) registered transfer key. A host never
/// waits for a grant: one that does not exist or has registered no key is an error naming it.
async fn host_key(ctx: &mut Context, host_id: &str) -> Result<X25519PublicKey, CliError> {
    let found = match ctx
        .call(|c| async move { c.host_transfer_key(host_id).await })
        .await
    {
        Ok(found) => found,
        Err(e) if e.code == ErrorCode::NotFound.as_str() => {
            return Err(CliError::new(
                ErrorCode::UnknownRecipient.as_str(),
                format!(
                    "cannot send to host:{host_id}: no such host, or its agent has not \
                     registered a transfer key yet (hosts do not wait for a grant)"
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    X25519PublicKey::from_encoded(&found).map_err(|e| {
        CliError::new(
            "key",
            format!("the server holds an invalid key for host:{host_id}: {e}"),
        )
    })
}

/// Sends the sealed manifest; the server then checks the chunks form a whole stream.
pub async fn complete(
    ctx: &mut Context,
    id: &str,
    trailer: &Trailer,
) -> Result<Transfer, CliError> {
    let request = CompleteTransferRequest {
        manifest: base64::engine::general_purpose::STANDARD.encode(&trailer.sealed_manifest),
    };
    let request = &request;
    ctx.call(|c| async move { c.complete_transfer(id, request.clone()).await })
        .await
}

/// The exact command that continues this send.
pub fn resume_hint(ctx: &Context, args: &SendArgs) -> String {
    format!(
        "mftctl send --resume {} {} --server {}",
        shell_quote(&args.file.display().to_string()),
        shell_quote(&args.recipients),
        shell_quote(ctx.client().base_url())
    )
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

pub fn cipher_id(arg: CipherArg) -> CipherId {
    match arg {
        CipherArg::Aes256Gcm => CipherId::Aes256Gcm,
        CipherArg::ChaCha20Poly1305 => CipherId::ChaCha20Poly1305,
    }
}

pub fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Zstd { .. } => "zstd",
    }
}

fn zstd_level(c: Compression) -> Option<i32> {
    match c {
        Compression::None => None,
        Compression::Zstd { level } => Some(level),
    }
}

pub fn report(ctx: &Context, transfer: &Transfer, file: &str, size: u64) -> Result<u8, CliError> {
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
