//! Grants (decision 0022): a file sent to someone who had no key yet is encrypted to the
//! sender (and the others) only, and that recipient waits. Once they have signed in and
//! registered a key, the sender's client unwraps the file key from the header with the
//! sender's own key, wraps it to theirs and uploads the header with that stanza appended. The
//! cloud never sees the file key.
//!
//! Two ways in: `mftctl transfers grant [ID]` does it and says what it did and who still waits;
//! and every later run with a signed-in session does it on its own, briefly and quietly
//! ([`auto`]), printing one line per grant on stderr and never failing the command. That run
//! only asks the server when this machine sent something still waiting: `send` leaves a marker
//! (`<state dir>/grants/<transfer id>`, holding the server URL; no secret) that goes once
//! nobody waits any more. The marker lives where the key does, since only the key the transfer
//! was sent with can grant.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use mftplus_crypto::stream::{add_x25519_recipients, Identity, X25519PublicKey, X25519SecretKey};
use mftplus_types::transfers::{GrantRequest, PendingGrant, Transfer};
use mftplus_types::ErrorCode;
use serde::Serialize;

use crate::context::{Context, CredentialSource};
use crate::error::CliError;
use crate::keys;
use crate::output::{emit, emit_json, note};

/// The whole automatic look, listing and grants, gives up after this.
const AUTO_TIMEOUT: Duration = Duration::from_secs(3);
/// What the server lists at most per look (`app::grants::MAX_PENDING`): a shorter listing is
/// all there is, so markers of transfers not in it can go.
const LISTING_LIMIT: usize = 100;

/// What one look did.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub granted: Vec<Entry>,
    /// Recipients with no key yet.
    pub waiting: Vec<Entry>,
    pub failed: Vec<Failure>,
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub transfer_id: String,
    pub recipient: String,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub transfer_id: String,
    pub code: String,
    pub message: String,
}

fn markers_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("grants")
}

/// After `send`: says plainly what happens for each recipient without a key, and leaves the
/// marker that makes later runs look for grants.
pub fn after_send(ctx: &Context, transfer: &Transfer) {
    let waiting: Vec<&str> = transfer
        .recipients
        .iter()
        .filter(|r| r.awaiting_grant)
        .map(|r| r.display.as_str())
        .collect();
    if waiting.is_empty() {
        return;
    }
    for who in &waiting {
        note(&format!(
            "{who} has no key yet; they can receive once they sign in with mftctl and your next \
             mftctl run grants access (or run `mftctl transfers grant {}`)",
            transfer.id
        ));
    }
    let Some(dir) = &ctx.state_dir else { return };
    let path = markers_dir(dir).join(&transfer.id);
    let saved = crate::config_file::write_private(&path, ctx.client().base_url().as_bytes());
    if let Err(e) = saved {
        note(&format!(
            "warning: cannot remember to grant access later ({e}); run `mftctl transfers grant` \
             once they have signed in"
        ));
    }
}

/// Transfer ids this machine sent to the current server that may still wait for a grant.
fn marked(ctx: &Context) -> Vec<String> {
    let Some(dir) = &ctx.state_dir else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(markers_dir(dir)) else {
        return Vec::new();
    };
    let server = ctx.client().base_url().to_string();
    entries
        .flatten()
        .filter(|e| fs::read_to_string(e.path()).is_ok_and(|s| s.trim() == server))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect()
}

/// Removes the markers of `marked` transfers not in `still_waiting`, once the listing was whole.
fn forget_done(ctx: &Context, marked: &[String], listed: usize, still_waiting: &[String]) {
    let Some(dir) = &ctx.state_dir else { return };
    if listed >= LISTING_LIMIT {
        return;
    }
    for id in marked.iter().filter(|id| !still_waiting.contains(id)) {
        let _ = fs::remove_file(markers_dir(dir).join(id));
    }
}

/// The look every signed-in run makes after its command: only when this machine marked a
/// transfer, within [`AUTO_TIMEOUT`], one stderr line per grant. Nothing it meets (no key, the
/// server away, a refusal) fails the command; a refused grant says so on stderr.
pub async fn auto(ctx: &mut Context) {
    if ctx.source != CredentialSource::ConfigToken {
        return;
    }
    let marked = marked(ctx);
    if marked.is_empty() {
        return;
    }
    let Ok(Some(secret)) = keys::load(&keys::key_path(ctx)) else {
        return;
    };
    let Ok(Ok(outcome)) =
        tokio::time::timeout(AUTO_TIMEOUT, look(ctx, None, &secret, &marked)).await
    else {
        return;
    };
    for entry in &outcome.granted {
        note(&granted_line(entry));
    }
    for failure in &outcome.failed {
        note(&failed_line(failure));
    }
}

fn granted_line(entry: &Entry) -> String {
    format!(
        "granted {} access to transfer {}",
        entry.recipient, entry.transfer_id
    )
}

fn failed_line(failure: &Failure) -> String {
    format!(
        "could not grant access to transfer {}: {} ({})",
        failure.transfer_id, failure.message, failure.code
    )
}

/// `mftctl transfers grant [ID]`: grants what can be granted now and reports it, with who is
/// still waiting. Exit 1 when a grant failed.
pub async fn run(ctx: &mut Context, id: Option<&str>) -> Result<u8, CliError> {
    let path = keys::key_path(ctx);
    let secret = keys::load(&path)?.ok_or_else(|| {
        CliError::new(
            "no_key",
            format!(
                "no key pair in {}; access can only be granted with the key the files were \
                 sent with",
                path.display()
            ),
        )
    })?;
    let marked = marked(ctx);
    let outcome = look(ctx, id, &secret, &marked).await?;
    if ctx.json() {
        emit_json(&outcome)?;
    } else {
        let mut lines: Vec<String> = outcome.granted.iter().map(granted_line).collect();
        lines.extend(outcome.waiting.iter().map(|w| {
            format!(
                "{} is still waiting for transfer {}: they have no key yet (they get one by \
                 signing in with mftctl)",
                w.recipient, w.transfer_id
            )
        }));
        lines.extend(outcome.failed.iter().map(failed_line));
        if lines.is_empty() {
            lines.push(match id {
                Some(id) => format!("nobody is waiting for a grant on transfer {id}"),
                None => "nobody is waiting for a grant".into(),
            });
        }
        emit(&lines.join("\n"))?;
    }
    Ok(if outcome.failed.is_empty() { 0 } else { 1 })
}

/// Lists what waits (only `only` when given), grants every recipient who has a key now, and
/// keeps the markers true.
async fn look(
    ctx: &mut Context,
    only: Option<&str>,
    secret: &X25519SecretKey,
    marked: &[String],
) -> Result<Outcome, CliError> {
    let pending = ctx
        .call(|c| async move { c.pending_grants().await })
        .await?;
    let listed = pending.len();
    let mut outcome = Outcome::default();
    let mut still_waiting = Vec::new();
    for transfer in pending
        .into_iter()
        .filter(|p| only.is_none_or(|id| p.transfer_id == id))
    {
        let waits = grant_one(ctx, transfer, secret, &mut outcome).await;
        if let Some(id) = waits {
            still_waiting.push(id);
        }
    }
    if only.is_none() {
        forget_done(ctx, marked, listed, &still_waiting);
    }
    Ok(outcome)
}

/// Grants the recipients of one transfer who have a key, once more from a fresh header if
/// another grant came first. Returns the transfer's id when someone still waits on it.
async fn grant_one(
    ctx: &mut Context,
    mut transfer: PendingGrant,
    secret: &X25519SecretKey,
    outcome: &mut Outcome,
) -> Option<String> {
    let id = transfer.transfer_id.clone();
    let fail = |code: &str, message: String| Failure {
        transfer_id: id.clone(),
        code: code.into(),
        message,
    };
    let mut keyless = Vec::new();
    let mut ready: Vec<(String, String, X25519PublicKey)> = Vec::new();
    for r in &transfer.recipients {
        match r.public_key.as_deref().map(X25519PublicKey::from_encoded) {
            Some(Ok(key)) => ready.push((r.id.clone(), r.display.clone(), key)),
            Some(Err(e)) => {
                let message = format!("the server holds an invalid key for {}: {e}", r.display);
                outcome.failed.push(fail("key", message));
            }
            None => keyless.push(r.display.clone()),
        }
    }
    for who in keyless {
        outcome.waiting.push(Entry {
            transfer_id: id.clone(),
            recipient: who,
        });
    }
    let still_waits = outcome.waiting.iter().any(|w| w.transfer_id == id);
    if ready.is_empty() {
        return still_waits.then_some(id);
    }
    for attempt in 0..2 {
        match send_grant(ctx, &transfer, &ready, secret).await {
            Ok(()) => {
                outcome
                    .granted
                    .extend(ready.iter().map(|(_, display, _)| Entry {
                        transfer_id: id.clone(),
                        recipient: display.clone(),
                    }));
                return still_waits.then_some(id);
            }
            Err(e) if e.code == ErrorCode::GrantStale.as_str() && attempt == 0 => {
                match refetch(ctx, &id).await {
                    Some(fresh) => transfer = fresh,
                    None => return None,
                }
            }
            Err(e) => {
                outcome.failed.push(fail(&e.code, e.message));
                return Some(id);
            }
        }
    }
    Some(id)
}

/// The transfer as the server lists it now; `None` when nobody waits on it any more.
async fn refetch(ctx: &mut Context, id: &str) -> Option<PendingGrant> {
    let pending = ctx
        .call(|c| async move { c.pending_grants().await })
        .await
        .ok()?;
    pending.into_iter().find(|p| p.transfer_id == id)
}

async fn send_grant(
    ctx: &mut Context,
    transfer: &PendingGrant,
    ready: &[(String, String, X25519PublicKey)],
    secret: &X25519SecretKey,
) -> Result<(), CliError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let base = b64
        .decode(transfer.header.trim())
        .map_err(|_| CliError::new("crypto", "the server sent a header that is not base64"))?;
    let keys: Vec<X25519PublicKey> = ready.iter().map(|(_, _, key)| *key).collect();
    let header = add_x25519_recipients(&base, &[Identity::X25519(secret)], &keys).map_err(|e| {
        CliError::new(
            "crypto",
            format!(
                "cannot open the transfer's header with your key ({e}); it can only be granted \
                 from the machine (the key pair) it was sent from"
            ),
        )
    })?;
    let request = GrantRequest {
        recipients: ready.iter().map(|(id, _, _)| id.clone()).collect(),
        header: b64.encode(header),
        base_header_sha256: mftplus_crypto::sha256_hex(&base),
    };
    let (id, request) = (transfer.transfer_id.as_str(), &request);
    ctx.call(|c| async move { c.grant_transfer(id, request).await })
        .await
        .map(drop)
}
