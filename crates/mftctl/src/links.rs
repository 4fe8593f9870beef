//! Share links (decision 0023): `mftctl send FILE --link` and `mftctl transfers links`.
//!
//! A link's key never leaves this process except in the printed URL: `send --link` makes a
//! fresh 32-byte secret, wraps the file key to it (and to a passphrase, with
//! `--link-passphrase`) in a link stanza of the stream header, and puts the secret after the
//! `#` of the URL, which browsers never send to a server. The server makes the token (the part
//! before `#`) and keeps only its hash.

use mftplus_crypto::stream::{CipherId, LinkKey, LinkSecret, Recipient, DEFAULT_PBKDF2_ITERATIONS};
use mftplus_types::links::{CreateLinkRequest, CreatedLink, Link};
use mftplus_types::transfers::Transfer;
use serde_json::json;

use crate::apikeys::check_duration;
use crate::cli::{LinksArgs, LinksCommand, SendArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json, note, or_dash, Table};

/// What `--link` asked for, with the secret made for it.
pub struct LinkPlan {
    secret: Option<LinkSecret>,
    passphrase: Option<String>,
    expires: Option<String>,
    max_downloads: Option<u32>,
}

/// A link made for a send: the server's record and the URL to hand out.
pub struct MadeLink {
    pub link: Link,
    pub url: String,
}

impl LinkPlan {
    /// The plan of a send, or `None` without `--link`. A browser reads AES-256-GCM without
    /// compression only, so `--link` with another cipher or `--compress` is refused here, before
    /// anything is read or sent.
    pub fn from_args(args: &SendArgs) -> Result<Option<LinkPlan>, CliError> {
        if !args.link {
            return Ok(None);
        }
        if crate::send::cipher_id(args.cipher) != CipherId::Aes256Gcm || args.compress {
            return Err(CliError::new(
                "link_unsupported",
                "--link needs a file a browser can decrypt: AES-256-GCM (the default cipher) \
                 without --compress (browsers have neither ChaCha20-Poly1305 nor zstd)",
            ));
        }
        check_duration("--link-expires", args.link_expires.as_deref())?;
        if args.max_downloads == Some(0) {
            return Err(CliError::usage("--max-downloads must be at least 1"));
        }
        if args.file.as_os_str() == "-" && args.link_passphrase_stdin {
            return Err(CliError::usage(
                "--link-passphrase-stdin cannot be used when the data comes from standard \
                 input; use --link-passphrase-file",
            ));
        }
        let passphrase = crate::send::passphrase_if(
            args.link_passphrase,
            args.link_passphrase_stdin,
            args.link_passphrase_file.as_deref(),
            true,
        )?;
        let secret = if args.link_passphrase_only {
            None
        } else {
            Some(LinkSecret::generate().map_err(crate::send::stream_error)?)
        };
        Ok(Some(LinkPlan {
            secret,
            passphrase,
            expires: args.link_expires.clone(),
            max_downloads: args.max_downloads,
        }))
    }

    /// The stanza's recipient in the stream header.
    pub fn recipient(&self) -> Recipient<'_> {
        Recipient::Link {
            key: LinkKey {
                secret: self.secret.as_ref(),
                passphrase: self.passphrase.as_deref(),
            },
            iterations: DEFAULT_PBKDF2_ITERATIONS,
        }
    }

    /// Asks the server for the link to `transfer_id` (made once the transfer exists, so the
    /// link works as soon as the upload completes, also after a `send --resume`).
    pub async fn create(&self, ctx: &mut Context, transfer_id: &str) -> Result<MadeLink, CliError> {
        let request = CreateLinkRequest {
            expires: self.expires.clone(),
            max_downloads: self.max_downloads,
        };
        let request = &request;
        let created: CreatedLink = ctx
            .call(|c| async move { c.create_link(transfer_id, request).await })
            .await?;
        let base = ctx.client().base_url().trim_end_matches('/').to_string();
        let fragment = self
            .secret
            .as_ref()
            .map(|s| format!("#{}", s.to_encoded().as_str()))
            .unwrap_or_default();
        Ok(MadeLink {
            url: format!("{base}{}{fragment}", created.path),
            link: created.link,
        })
    }
}

/// The recipients of a send: as given, or with `--link` and none given the sender alone (the
/// sender is always a recipient, so the link's transfer has one).
pub async fn recipients(
    ctx: &mut Context,
    given: &str,
    link: bool,
) -> Result<Vec<String>, CliError> {
    if link && given.split(',').all(|r| r.trim().is_empty()) {
        let status = ctx.call(|c| async move { c.status().await }).await?;
        return Ok(vec![status.principal.email]);
    }
    crate::send::split_recipients(given)
}

/// Makes the planned link to the transfer just created; when that fails, the transfer is
/// cancelled (nothing of it was uploaded yet) and the error stands.
pub async fn make(
    ctx: &mut Context,
    plan: Option<&LinkPlan>,
    transfer_id: &str,
) -> Result<Option<MadeLink>, CliError> {
    let Some(plan) = plan else {
        return Ok(None);
    };
    match plan.create(ctx, transfer_id).await {
        Ok(made) => Ok(Some(made)),
        Err(e) => {
            let _ = ctx
                .call(|c| async move { c.cancel_transfer(transfer_id).await })
                .await;
            Err(e)
        }
    }
}

/// What a send with `--link` prints: the transfer as `send` always does, then the URL alone
/// on a line of standard output (in `--json`, one object with both).
pub fn report(
    ctx: &Context,
    transfer: &Transfer,
    file: &str,
    size: u64,
    made: &MadeLink,
) -> Result<u8, CliError> {
    if ctx.json() {
        emit_json(&json!({
            "id": transfer.id,
            "file": file,
            "size": size,
            "transfer": transfer,
            "link": {"url": made.url, "link": made.link},
        }))?;
        return Ok(0);
    }
    crate::send::report(ctx, transfer, file, size)?;
    emit(&made.url)?;
    let limit = made.link.max_downloads.map_or_else(
        || "no download limit".to_string(),
        |n| format!("{n} downloads"),
    );
    note(&format!(
        "share link {}: expires {}, {limit}; the key is the part after # — whoever has the \
         whole link can download the file. Revoke it with `mftctl transfers links revoke {}`",
        made.link.id, made.link.expires_at, made.link.id
    ));
    Ok(0)
}

/// `mftctl transfers links ID` and `mftctl transfers links revoke LINK_ID`.
pub async fn run(ctx: &mut Context, args: &LinksArgs) -> Result<u8, CliError> {
    match (&args.command, &args.id) {
        (Some(LinksCommand::Revoke { link_id }), _) => revoke(ctx, link_id).await,
        (None, Some(id)) => list(ctx, id).await,
        (None, None) => Err(CliError::usage(
            "give a transfer id to list its links, or `revoke LINK_ID`",
        )),
    }
}

async fn list(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let links = ctx.call(|c| async move { c.list_links(id).await }).await?;
    if ctx.json() {
        emit_json(&links)?;
        return Ok(0);
    }
    if links.is_empty() {
        note("no share links (make one with `mftctl send FILE --link`)");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "ID",
        "STATUS",
        "DOWNLOADS",
        "MAX",
        "LAST OPENED",
        "EXPIRES",
        "CREATED",
    ]);
    for link in &links {
        table.row(vec![
            link.id.clone(),
            link.status.clone(),
            link.downloads.to_string(),
            link.max_downloads
                .map_or_else(|| "-".into(), |n| n.to_string()),
            or_dash(link.last_opened_at.as_deref()),
            link.expires_at.clone(),
            link.created_at.clone(),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

async fn revoke(ctx: &mut Context, link_id: &str) -> Result<u8, CliError> {
    let link = ctx
        .call(|c| async move { c.revoke_link(link_id).await })
        .await?;
    if ctx.json() {
        emit_json(&link)?;
    } else {
        emit(&link.id)?;
        note("revoked: the link no longer opens, and downloads under way stop at their next chunk");
    }
    Ok(0)
}
