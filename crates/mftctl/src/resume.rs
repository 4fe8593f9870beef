//! `mftctl send --resume FILE RECIPIENTS`: continues an interrupted send.
//!
//! The saved state (`upload_state.rs`) holds the stream header; the sender's own key unwraps
//! the file key from it, and `Encryptor::resume` re-seals the file into exactly the chunks it
//! produced the first time. Every chunk the server already recorded is compared by SHA-256
//! instead of uploaded, the missing ones are uploaded, and the transfer is completed.
//!
//! Re-sealing a chunk index under the same key is only safe with the same plaintext, so the
//! file must be unchanged: size and modification time are checked first, and any recorded
//! chunk that hashes differently stops the resume (`file_changed`) before anything is sent.

use std::collections::HashMap;
use std::fs::File;

use base64::Engine;
use mftplus_crypto::stream::{Compression, Encryptor, Identity, ManifestInfo, StreamError};

use crate::cli::{CipherArg, SendArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::keys;
use crate::output::note;
use crate::progress::Progress;
use crate::send::{report, resume_hint, split_recipients, stream_error, upload_and_complete};
use crate::upload_state::{self, FileStamp, UploadState};

pub async fn resume(ctx: &mut Context, args: &SendArgs) -> Result<u8, CliError> {
    let Saved {
        state,
        state_dir,
        file,
        shown,
    } = saved_send(ctx, args)?;
    let id = state.transfer_id.clone();
    let tid = id.as_str();
    if let Some(done) = ended_already(ctx, &state, &state_dir, &shown).await? {
        return Ok(done);
    }
    let recorded: HashMap<u64, _> = ctx
        .call(|c| async move { c.list_chunks(tid).await })
        .await?
        .into_iter()
        .map(|c| (c.index, c))
        .collect();

    let encryptor = rebuild(ctx, &state)?;
    let stored = recorded.len();
    let mut progress = Progress::new("sent", Some(state.size), args.progress, ctx.json());
    let info = ManifestInfo {
        name: state.name.clone(),
        // The saved mode, not today's: the manifest must come out identical too, since it is
        // sealed under a fixed nonce and a first attempt may already have sent it.
        mode: state.mode,
    };
    let result = upload_and_complete(
        ctx,
        &id,
        encryptor,
        Box::new(file),
        info,
        recorded,
        &mut progress,
    )
    .await;
    match result {
        Ok((done, trailer)) => {
            upload_state::remove(&state_dir, &id);
            if !ctx.json() {
                note(&format!(
                    "resumed transfer {id}: {stored} chunks were already on the server"
                ));
            }
            report(ctx, &done, &shown, trailer.manifest.size)
        }
        Err(e) => {
            if e.code != "file_changed" {
                note(&format!(
                    "transfer {id} is kept on the server; to continue it run:\n  {}",
                    resume_hint(ctx, args)
                ));
            }
            Err(CliError::new(
                &e.code,
                format!("resuming the send of {shown} failed: {}", e.message),
            ))
        }
    }
}

/// The transfer as the server has it now: `None` while it is still uploading (resume it);
/// the report when an earlier attempt already completed it; an error when it is gone or ended
/// otherwise. The saved state is removed in every case but the first.
async fn ended_already(
    ctx: &mut Context,
    state: &UploadState,
    state_dir: &std::path::Path,
    shown: &str,
) -> Result<Option<u8>, CliError> {
    let id = state.transfer_id.as_str();
    let transfer = ctx
        .call(|c| async move { c.get_transfer(id).await })
        .await
        .inspect_err(|e| {
            if e.code == "not_found" {
                upload_state::remove(state_dir, id);
            }
        })?;
    match transfer.status.as_str() {
        "uploading" => Ok(None),
        "complete" => {
            // Interrupted after completing, before the state was removed.
            upload_state::remove(state_dir, id);
            note(&format!("transfer {id} was already complete"));
            report(ctx, &transfer, shown, state.size).map(Some)
        }
        other => {
            upload_state::remove(state_dir, id);
            Err(CliError::new(
                "not_resumable",
                format!("transfer {id} is {other}; send the file again without --resume"),
            ))
        }
    }
}

/// An interrupted send found in the saved state, with its file reopened.
struct Saved {
    state: UploadState,
    state_dir: std::path::PathBuf,
    file: File,
    /// The file as the user named it.
    shown: String,
}

/// The saved state of the interrupted send of `args.file` to this server, checked against the
/// recipients given now and the file as it is now (unchanged size and modification time).
fn saved_send(ctx: &Context, args: &SendArgs) -> Result<Saved, CliError> {
    let recipients = split_recipients(&args.recipients)?;
    let shown = args.file.display().to_string();
    let path = std::fs::canonicalize(&args.file)
        .map_err(|e| CliError::io(format!("cannot open {shown}"), e))?;
    let state_dir = ctx.state_dir.clone().ok_or_else(|| {
        CliError::new(
            "resume_not_found",
            "neither XDG_STATE_HOME nor HOME is set, so there is no saved upload to resume",
        )
    })?;
    let server = ctx.client().base_url().to_string();
    let state = upload_state::find(&state_dir, &server, &path)?.ok_or_else(|| {
        CliError::new(
            "resume_not_found",
            format!(
                "no interrupted send of {} to {server} was found; send it again without --resume",
                path.display()
            ),
        )
    })?;
    if !state.same_recipients(&recipients) {
        return Err(CliError::new(
            "resume_mismatch",
            format!(
                "the interrupted send of {shown} went to {}; resume with the same recipients, \
                 or send it again without --resume",
                state.recipients.join(",")
            ),
        ));
    }
    let file = File::open(&path).map_err(|e| CliError::io(format!("cannot open {shown}"), e))?;
    let meta = file
        .metadata()
        .map_err(|e| CliError::io(format!("cannot read {shown}"), e))?;
    if FileStamp::of(&meta) != state.stamp() {
        return Err(CliError::new(
            "file_changed",
            format!(
                "{shown} changed (size or modification time) since the interrupted send, so it \
                 cannot be resumed; send it again without --resume"
            ),
        ));
    }

    Ok(Saved {
        state,
        state_dir,
        file,
        shown,
    })
}

/// An encryptor that reproduces the interrupted send's chunks byte for byte.
fn rebuild(ctx: &Context, state: &UploadState) -> Result<Encryptor, CliError> {
    let secret = keys::load(&keys::key_path(ctx))?.ok_or_else(|| {
        CliError::new(
            "not_resumable",
            format!(
                "your key pair ({}) is gone, and only it can reopen the interrupted send; send \
                 the file again without --resume",
                keys::key_path(ctx).display()
            ),
        )
    })?;
    let corrupt = |what: &str| {
        CliError::new(
            "resume_state",
            format!(
                "the saved state of transfer {} is damaged ({what}); send the file again \
                 without --resume",
                state.transfer_id
            ),
        )
    };
    let header = base64::engine::general_purpose::STANDARD
        .decode(&state.header)
        .map_err(|_| corrupt("header"))?;
    if CipherArg::from_name(&state.cipher).is_none() {
        return Err(corrupt("cipher"));
    }
    let compression = match (state.compression.as_str(), state.zstd_level) {
        ("none", None) => Compression::None,
        ("zstd", Some(level)) => Compression::Zstd { level },
        _ => return Err(corrupt("compression")),
    };
    Encryptor::resume(&header, &[Identity::X25519(&secret)], compression).map_err(|e| match e {
        StreamError::NoMatchingRecipient => CliError::new(
            "not_resumable",
            "your key pair changed since the interrupted send, so it cannot be reopened; send \
             the file again without --resume",
        ),
        other => stream_error(other),
    })
}
