//! Grants (decision 0022): a transfer sent to someone who had no public key yet records them
//! as waiting; once they register one, the sender's own client wraps the file key to it and
//! uploads the header with their stanza appended. The cloud never holds the file key, so it
//! cannot make or check the new MAC; it checks everything else about the new header without
//! any key: the same parameters and salt, every earlier stanza byte for byte, and exactly one
//! new X25519 stanza per named recipient, for the key that recipient has registered now.
//!
//! Also here: who is waiting (for the sender's client, one bounded query), and the refusal a
//! waiting recipient gets when fetching what it cannot open yet.

use std::collections::HashMap;

use mftplus_crypto::stream::{check_extension, X25519PublicKey};
use mftplus_store::{
    grant_conflict, recipient_kind, transfer_status, NewRecipient, StoreError, TransferGrant,
    TransferParty, TransferRow, UserKeyRow,
};
use mftplus_types::ErrorCode;
use serde_json::json;

use super::transfers::{is_party, sent_by};
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The most transfers one look at what waits returns: a sender's client grants these and
/// looks again on its next run.
pub const MAX_PENDING: u32 = 100;
/// The most recipients one grant names (a header holds at most 64 stanzas anyway).
pub const MAX_GRANTED: usize = 64;
/// A grant's header is bounded like a new transfer's.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// One of the caller's transfers with recipients waiting, and the keys of those of them who
/// have registered one since (the ones the sender can grant now).
#[derive(Debug, Clone)]
pub struct Pending {
    pub row: TransferRow,
    /// By user id; only waiting recipients with a registered key.
    pub keys: HashMap<String, UserKeyRow>,
}

/// The caller's open transfers with recipients waiting for a grant, oldest first: one query
/// for the transfers and one per distinct waiting recipient for their key.
pub async fn pending(state: &AppState, caller: &Caller) -> ApiResult<Vec<Pending>> {
    let rows = state
        .store
        .list_awaiting_grants(&caller.user_id, state.clock.now_ms(), MAX_PENDING)
        .await?;
    let mut keys: HashMap<String, Option<UserKeyRow>> = HashMap::new();
    for recipient in rows.iter().flat_map(waiting) {
        if !keys.contains_key(&recipient.id) {
            let key = state.store.get_user_key(&recipient.id).await?;
            keys.insert(recipient.id.clone(), key);
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let found = waiting(&row)
                .filter_map(|r| Some((r.id.clone(), keys.get(&r.id)?.clone()?)))
                .collect();
            Pending { row, keys: found }
        })
        .collect())
}

/// The user recipients of `row` still waiting for a grant.
pub fn waiting(row: &TransferRow) -> impl Iterator<Item = &mftplus_store::RecipientRow> {
    row.recipients
        .iter()
        .filter(|r| r.kind == recipient_kind::USER && r.awaiting_grant)
}

/// Marks the recipients named in `awaiting` (emails, as the sender's client gave them: those it
/// found no public key for) as waiting for a grant. Each must be one of the user `recipients`:
/// a host never waits (it is refused at creation without a key), and a host sender cannot
/// grant later, so it names nobody (decision 0029).
pub fn mark_waiting(
    sender: &TransferParty,
    recipients: &mut [NewRecipient],
    awaiting: &[String],
) -> ApiResult<()> {
    if sender.kind() != recipient_kind::USER && !awaiting.is_empty() {
        return Err(ApiError::validation(
            "a host cannot grant access later: it sends only to recipients with a key \
             (awaiting_grant must be empty)",
        ));
    }
    for email in awaiting {
        let email = email.trim();
        let Some(recipient) = recipients
            .iter_mut()
            .find(|r| r.kind == recipient_kind::USER && r.display.eq_ignore_ascii_case(email))
        else {
            return Err(ApiError::validation(format!(
                "awaiting_grant names {email:?}, who is not among the recipients"
            )));
        };
        // The sender never waits: every header holds their own stanza (a client that did not
        // know its own key yet when it looked the sender up names them anyway).
        if !(sender.kind() == recipient.kind && sender.id() == recipient.id) {
            recipient.awaiting_grant = true;
        }
    }
    Ok(())
}

/// 409 `awaiting_grant` when `party` is a recipient of `row` the sender has not granted yet:
/// the header holds nothing it can open, so neither do the chunks or the manifest. (Only user
/// recipients ever wait.)
pub fn refuse_if_waiting(row: &TransferRow, party: &TransferParty) -> ApiResult<()> {
    let is_waiting = !party.sent(row) && party.recipient_of(row).is_some_and(|r| r.awaiting_grant);
    if is_waiting {
        return Err(ApiError::new(
            ErrorCode::AwaitingGrant,
            format!(
                "waiting for the sender to grant access to transfer {}: it was sent before you \
                 had an encryption key; once you have signed in with mftctl (which makes one), \
                 the sender's next mftctl run grants it",
                row.id
            ),
        ));
    }
    Ok(())
}

/// What a sender's grant carries.
#[derive(Debug, Clone)]
pub struct GrantInput {
    /// User ids of the recipients granted.
    pub recipients: Vec<String>,
    pub header: Vec<u8>,
    /// SHA-256 hex of the header the new one was built from.
    pub base_header_sha256: String,
}

/// Applies the sender's grant after checking it in this order: the transfer is the caller's
/// (others' are absent, or 403 for its recipients), open (`transfer_closed`), the named
/// recipients are its waiting user recipients (`already_granted` for one that is not
/// waiting), the new header was built from the current one (`grant_stale`), it is the current
/// one with stanzas appended (`grant_invalid`), and the new stanzas are exactly the named
/// recipients' registered keys (`grant_key_mismatch`). Audited as `transfer_access_granted`.
pub async fn grant(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    id: &str,
    input: &GrantInput,
) -> ApiResult<TransferRow> {
    let row = own_open_transfer(state, caller, id).await?;
    check_recipients(&row, &input.recipients)?;
    let base = mftplus_crypto::sha256_hex(&row.header);
    if !base.eq_ignore_ascii_case(input.base_header_sha256.trim()) {
        return Err(stale());
    }
    if input.header.len() > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the stream header is larger than 64 KiB",
        ));
    }
    let added = check_extension(&row.header, &input.header)
        .map_err(|e| ApiError::new(ErrorCode::GrantInvalid, e.to_string()))?;
    check_keys(state, &row, &input.recipients, &added).await?;
    let granted = state
        .store
        .grant_transfer_access(&TransferGrant {
            transfer_id: row.id.clone(),
            base_header: row.header.clone(),
            header: input.header.clone(),
            recipient_ids: input.recipients.clone(),
            at_ms: state.clock.now_ms(),
        })
        .await
        .map_err(grant_refused)?;
    state.transfer_news.announce_to(
        granted
            .recipients
            .iter()
            .filter(|r| input.recipients.contains(&r.id))
            .map(|r| (r.kind.as_str(), r.id.as_str())),
    );
    let displays: Vec<&str> = granted
        .recipients
        .iter()
        .filter(|r| input.recipients.contains(&r.id))
        .map(|r| r.display.as_str())
        .collect();
    state
        .audit(
            AuditEvent::new("transfer_access_granted")
                .actor(&caller.email)
                .target(&granted.id)
                .ip(ip)
                .details(json!({"recipients": displays, "stanzas_added": added.len()})),
        )
        .await;
    Ok(granted)
}

/// The transfer, when the caller sent it and it is still open.
async fn own_open_transfer(state: &AppState, caller: &Caller, id: &str) -> ApiResult<TransferRow> {
    let row = state
        .store
        .get_transfer(id)
        .await?
        .filter(|row| is_party(row, caller))
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    if !sent_by(&row, caller) {
        return Err(ApiError::forbidden(
            "only the sender can grant access: the file key is wrapped to the sender's key",
        ));
    }
    let open = row.status == transfer_status::UPLOADING || row.status == transfer_status::COMPLETE;
    if !open || row.expires_at_ms <= state.clock.now_ms() {
        return Err(closed(&row));
    }
    Ok(row)
}

fn closed(row: &TransferRow) -> ApiError {
    let status = match row.status.as_str() {
        transfer_status::UPLOADING | transfer_status::COMPLETE => transfer_status::EXPIRED,
        other => other,
    };
    ApiError::new(
        ErrorCode::TransferClosed,
        format!("transfer {} is {status}: nothing can be granted", row.id),
    )
}

fn stale() -> ApiError {
    ApiError::new(
        ErrorCode::GrantStale,
        "the transfer's header changed since this grant was built (another grant came first); \
         build it again from the current header",
    )
}

/// Each named recipient once, each a user recipient of `row` waiting for a grant.
fn check_recipients(row: &TransferRow, ids: &[String]) -> ApiResult<()> {
    if ids.is_empty() || ids.len() > MAX_GRANTED {
        return Err(ApiError::validation(format!(
            "name 1 to {MAX_GRANTED} recipients to grant"
        )));
    }
    for (at, id) in ids.iter().enumerate() {
        if ids[..at].contains(id) {
            return Err(ApiError::validation(format!(
                "recipient {id} is named twice"
            )));
        }
        let Some(recipient) = row
            .recipients
            .iter()
            .find(|r| r.kind == recipient_kind::USER && &r.id == id)
        else {
            return Err(ApiError::validation(format!(
                "{id} is not a recipient of transfer {}",
                row.id
            )));
        };
        if !recipient.awaiting_grant {
            return Err(ApiError::new(
                ErrorCode::AlreadyGranted,
                format!(
                    "{} is not waiting for a grant on transfer {}: the header already holds \
                     their stanza",
                    recipient.display, row.id
                ),
            ));
        }
    }
    Ok(())
}

/// The new stanzas' fingerprints are exactly the named recipients' registered keys, one each.
async fn check_keys(
    state: &AppState,
    row: &TransferRow,
    ids: &[String],
    added: &[[u8; 16]],
) -> ApiResult<()> {
    let mismatch = |message: String| ApiError::new(ErrorCode::GrantKeyMismatch, message);
    if added.len() != ids.len() {
        return Err(mismatch(format!(
            "the new header adds {} stanzas for {} recipients",
            added.len(),
            ids.len()
        )));
    }
    for id in ids {
        let display = row
            .recipients
            .iter()
            .find(|r| &r.id == id)
            .map_or(id.as_str(), |r| r.display.as_str());
        let key = state
            .store
            .get_user_key(id)
            .await?
            .and_then(|key| X25519PublicKey::from_encoded(&key.public_key).ok())
            .ok_or_else(|| mismatch(format!("{display} has no public key registered yet")))?;
        if !added.contains(&key.fingerprint()) {
            return Err(mismatch(format!(
                "no new stanza is for {display}'s registered key (fingerprint {}); was it \
                 replaced since the grant was built?",
                key.fingerprint_hex()
            )));
        }
    }
    Ok(())
}

/// The store's refusals, which a concurrent change can still cause after the checks above.
fn grant_refused(err: StoreError) -> ApiError {
    match err {
        StoreError::Conflict(text) if text == grant_conflict::STALE => stale(),
        StoreError::Conflict(text) if text == grant_conflict::NOT_AWAITING => ApiError::new(
            ErrorCode::AlreadyGranted,
            "a named recipient is no longer waiting for a grant",
        ),
        StoreError::Conflict(text) if text == grant_conflict::CLOSED => ApiError::new(
            ErrorCode::TransferClosed,
            "the transfer was cancelled or expired: nothing can be granted",
        ),
        StoreError::NotFound => ApiError::not_found("transfer"),
        other => other.into(),
    }
}
