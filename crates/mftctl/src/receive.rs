//! `mftctl receive`: downloads a transfer's header, chunks and sealed manifest, decrypts
//! (`mftplus_transfer::receive`) into a private temporary file next to the target, and only once
//! the manifest verified (size, chunk count, SHA-256) renames it into place. On any failure the
//! temporary file is deleted: partial output is never left behind. `--output -` streams to
//! standard output instead, which cannot be taken back: there the exit status is the verdict.
//! `--parallel N` receives up to N pending transfers at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mftplus_base::direct_io::DirectWriter;
use mftplus_client::Client;
use mftplus_crypto::stream::{Identity, X25519SecretKey};
use mftplus_transfer::download::Sink;
use mftplus_transfer::receive::{self, TempFile};
use mftplus_types::transfers::Transfer;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::cli::ReceiveArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::keys;
use crate::output::{emit, emit_json, note};
use crate::progress::Progress;
use crate::send::passphrase_if;

#[derive(Debug, Serialize)]
struct Received {
    id: String,
    sender: String,
    name: String,
    /// `-` for standard output.
    path: PathBuf,
    size: u64,
    /// The manifest's content digest, checked: `chunks-sha256:<hex>` (format version 2) or
    /// `sha256:<hex>` of the plaintext (version 1).
    digest: String,
}

/// Where plaintext goes.
#[derive(Debug, Clone)]
enum Output {
    /// `DIR/<the sender's file name>`.
    Dir(PathBuf),
    /// Exactly this path (`--output PATH`).
    Path(PathBuf),
    /// `--output -`.
    Stdout,
}

/// What may open a transfer; shared by parallel receives.
struct Keys {
    secret: Option<X25519SecretKey>,
    passphrase: Option<String>,
}

impl Keys {
    fn identities(&self) -> Vec<Identity<'_>> {
        let mut identities = Vec::new();
        if let Some(secret) = &self.secret {
            identities.push(Identity::X25519(secret));
        }
        if let Some(p) = &self.passphrase {
            identities.push(Identity::Passphrase(p));
        }
        identities
    }
}

pub async fn receive(ctx: &mut Context, args: &ReceiveArgs) -> Result<u8, CliError> {
    let output = output_of(ctx, args)?;
    let keys = Arc::new(keys_of(ctx, args)?);

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
    let parallel = usize::try_from(args.parallel).unwrap_or(1).max(1);
    let quiet = ctx.json() || parallel > 1;
    let client = ctx.client();
    let mut received = Vec::new();
    let mut queue = transfers.into_iter();
    let mut running = JoinSet::new();
    let mut failure: Option<CliError> = None;
    loop {
        while failure.is_none() && running.len() < parallel {
            let Some(transfer) = queue.next() else { break };
            let progress = Progress::new(
                "received",
                Some(transfer.ciphertext_bytes),
                args.progress,
                quiet,
            );
            running.spawn(receive_one(
                client.clone(),
                transfer,
                output.clone(),
                args.overwrite,
                keys.clone(),
                progress,
            ));
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let got = done
            .map_err(|e| CliError::new("internal", format!("a receive task failed: {e}")))
            .and_then(|r| r);
        match got {
            Ok(got) => {
                announce(ctx, &output, &got)?;
                received.push(got);
            }
            // The first failure is reported; transfers already running may still finish.
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if ctx.json() {
        emit_json(&received)?;
    } else if received.is_empty() {
        note("nothing to receive");
    }
    Ok(0)
}

/// Where received files go: `--output` (a path, or `-` for standard output) or `--dir`.
fn output_of(ctx: &Context, args: &ReceiveArgs) -> Result<Output, CliError> {
    let output = match &args.output {
        Some(p) if p.as_os_str() == "-" => {
            if ctx.json() {
                return Err(CliError::usage(
                    "--json cannot be combined with --output -: standard output carries the file",
                ));
            }
            Output::Stdout
        }
        Some(p) => {
            let parent = parent_dir(p);
            if !parent.is_dir() {
                return Err(CliError::usage(format!(
                    "--output {}: {} is not a directory",
                    p.display(),
                    parent.display()
                )));
            }
            Output::Path(p.clone())
        }
        None => {
            if !args.dir.is_dir() {
                return Err(CliError::usage(format!(
                    "--dir {}: not a directory",
                    args.dir.display()
                )));
            }
            Output::Dir(args.dir.clone())
        }
    };
    Ok(output)
}

/// The private key of this profile and the passphrase (`--passphrase`): at least one of them.
fn keys_of(ctx: &Context, args: &ReceiveArgs) -> Result<Keys, CliError> {
    let secret = keys::load(&keys::key_path(ctx))?;
    let passphrase = passphrase_if(
        args.passphrase,
        args.passphrase_stdin,
        args.passphrase_file.as_deref(),
        false,
    )?;
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
    Ok(Keys { secret, passphrase })
}

/// One line about a received file: on standard error when the file went to standard output,
/// nothing with `--json` (the list is printed at the end).
fn announce(ctx: &Context, output: &Output, got: &Received) -> Result<(), CliError> {
    if matches!(output, Output::Stdout) {
        note(&format!(
            "received {} ({} bytes, {}) from {}",
            got.name, got.size, got.digest, got.sender
        ));
    } else if !ctx.json() {
        emit(&format!(
            "received {} ({} bytes) from {} -> {}",
            got.name,
            got.size,
            got.sender,
            got.path.display()
        ))?;
    }
    Ok(())
}

/// Complete transfers to me as a user recipient that I have not downloaded yet, oldest first.
async fn pending(ctx: &mut Context) -> Result<Vec<Transfer>, CliError> {
    let me = ctx
        .call(|c| async move { c.status().await })
        .await?
        .principal
        .user_id;
    // Only what waits for my download, not my whole history (a listing pages at 100).
    let mut all = ctx
        .call(|c| async move { c.pending_transfers(1000).await })
        .await?;
    all.retain(|t| {
        t.recipients
            .iter()
            .any(|r| r.kind == "user" && r.id == me && r.downloaded_at.is_none())
    });
    // Sent before we had a key: nothing to open until the sender grants (decision 0022).
    all.retain(|t| {
        let waiting = t.recipients.iter().any(|r| r.id == me && r.awaiting_grant);
        if waiting {
            note(&format!(
                "transfer {} from {}: {}",
                t.id,
                t.sender_email,
                crate::transfers::WAITING
            ));
        }
        !waiting
    });
    all.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(all)
}

async fn receive_one(
    client: Client,
    transfer: Transfer,
    output: Output,
    overwrite: bool,
    keys: Arc<Keys>,
    mut progress: Progress,
) -> Result<Received, CliError> {
    let result = download(&client, &transfer, &output, overwrite, &keys, &mut progress).await;
    progress.finish();
    let nothing = match output {
        Output::Stdout => "the data written to standard output is incomplete",
        _ => "nothing was written",
    };
    result.map_err(|e| {
        CliError::new(
            &e.code,
            format!(
                "transfer {} from {}: {} ({nothing})",
                transfer.id, transfer.sender_email, e.message
            ),
        )
    })
}

async fn download(
    client: &Client,
    transfer: &Transfer,
    output: &Output,
    overwrite: bool,
    keys: &Keys,
    progress: &mut Progress,
) -> Result<Received, CliError> {
    if transfer.status != "complete" {
        return Err(CliError::new(
            "conflict",
            format!("the transfer is {}, not complete", transfer.status),
        ));
    }
    let id = transfer.id.as_str();
    let identities = keys.identities();
    let decryptor = receive::open_header(client, id, &identities)
        .await
        .map_err(|e| match e.code.as_str() {
            "no_key" => CliError::new(
                "no_key",
                "the transfer is not encrypted to your key (was it sent before you last created \
                 your key pair?); if the sender set a passphrase, use --passphrase",
            ),
            _ => e.into(),
        })?;
    let count = transfer
        .chunk_count
        .ok_or_else(|| CliError::new("conflict", "the transfer has no chunk count"))?;

    // The temporary file is removed on drop unless it was persisted.
    let temp = match output {
        Output::Dir(dir) => Some(TempFile::create(dir, id)?),
        Output::Path(path) => Some(TempFile::create(&parent_dir(path), id)?),
        Output::Stdout => None,
    };
    let sink: Sink = match &temp {
        Some(temp) => Box::new(
            DirectWriter::open(&temp.path)
                .map_err(|e| CliError::io(format!("cannot open {}", temp.path.display()), e))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let chunks = mftplus_transfer::download::Chunks::Count(count);
    let manifest = receive::decrypt_into(client, id, chunks, decryptor, sink, &mut |e| {
        progress.event(e)
    })
    .await?;

    let target = place(output, temp.as_ref(), &manifest, overwrite)?;
    acknowledge(client, id).await;
    Ok(Received {
        id: transfer.id.clone(),
        sender: transfer.sender_email.clone(),
        name: manifest.name.clone(),
        path: target,
        size: manifest.size,
        digest: manifest.digest.labelled_hex(),
    })
}

/// Moves the verified temporary file to where the user asked for it: the received path.
fn place(
    output: &Output,
    temp: Option<&TempFile>,
    manifest: &mftplus_crypto::stream::Manifest,
    overwrite: bool,
) -> Result<PathBuf, CliError> {
    let target = match (output, temp) {
        (Output::Dir(dir), Some(temp)) => {
            let name = manifest.safe_file_name().ok_or_else(|| {
                CliError::new(
                    "unsafe_name",
                    format!(
                        "the sender's file name {:?} is not a safe file name",
                        manifest.name
                    ),
                )
            })?;
            let target = dir.join(name);
            temp.persist(&target, manifest.mode, overwrite)?;
            target
        }
        (Output::Path(path), Some(temp)) => {
            temp.persist(path, manifest.mode, overwrite)?;
            path.clone()
        }
        _ => PathBuf::from("-"),
    };
    Ok(target)
}

/// Tells the server the transfer was received.
async fn acknowledge(client: &Client, id: &str) {
    // Only a verified, complete output counts as received; a failed acknowledgement leaves
    // the transfer pending (a later `receive` fetches it again), it does not undo the file.
    match client.mark_received(id).await {
        Ok(mftplus_client::Accepted::Applied(_)) => {}
        Ok(mftplus_client::Accepted::Queued) => note(&format!(
            "note: received {id}; the edge hub queued the acknowledgement while the cloud is \
             unreachable"
        )),
        Err(e) => note(&format!(
            "warning: received {id}, but the server was not told ({}); it stays listed as \
             pending",
            e.message()
        )),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
