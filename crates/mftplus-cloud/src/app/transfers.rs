//! Transfers as their parties and operators see them, for the API (`/api/v1/transfers…`) and
//! the dashboard's transfer pages alike: which transfers a party may see (the one visibility
//! rule, for the listing and for a single transfer; a party is a user or, since decision 0029,
//! a host's agent), a page of the listing with its senders and progress, verifying a
//! transfer's stored chunks, and cancelling one with its audit record.
//!
//! Bounded work: a page of the listing is one store query for the rows (keyset on
//! `created_at_ms`, id), one for their senders and one for their stored-chunk counts, whatever
//! the page's length; one transfer's page is three.

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::middleware::Scope;
use crate::principal::Party;
use crate::state::AppState;
use futures_util::StreamExt;
use mftplus_blob::{BlobError, BlobKey, BlobReader, TransferId};
use mftplus_store::{
    recipient_kind, transfer_status, TimeCursor, TransferFilter, TransferParty, TransferRow,
};
use mftplus_types::transfers::VerifyReport;
use mftplus_types::ErrorCode;
use std::collections::{HashMap, HashSet};

/// The most transfers one page of the listing holds.
pub const MAX_LIMIT: u32 = 1000;
/// A page's length when the caller names none.
pub const DEFAULT_LIMIT: u32 = 100;

/// Which page of which transfers to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Only transfers in this status (a [`transfer_status`]; another word matches none).
    pub status: Option<String>,
    /// The previous page's `next_after`.
    pub after: Option<TimeCursor>,
    /// 1 to [`MAX_LIMIT`].
    pub limit: u32,
    /// Only the transfers waiting for the caller's own download (an inbox's question; a
    /// party's own, whatever its scope).
    pub pending: bool,
}

impl Listing {
    /// A listing from its wire form (query parameters of the API and the pages); 400 for a
    /// limit out of range or a cursor no page handed out.
    pub fn parse(status: Option<&str>, after: Option<&str>, limit: Option<u32>) -> ApiResult<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::validation(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let status = status
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let after = after
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(parse_cursor)
            .transpose()?;
        Ok(Listing {
            status,
            after,
            limit,
            pending: false,
        })
    }
}

/// One page of the listing, newest first.
#[derive(Debug, Clone)]
pub struct TransferPage {
    pub rows: Vec<TransferRow>,
    /// The cursor of the next page (`after`), when one follows.
    pub next_after: Option<String>,
}

/// A cursor as the wire carries it: `<created_at_ms>.<id>` of a page's last transfer.
pub fn cursor_text(row: &TransferRow) -> String {
    format!("{}.{}", row.created_at_ms, row.id)
}

fn parse_cursor(text: &str) -> ApiResult<TimeCursor> {
    let bad = || ApiError::validation("after must be the cursor a previous page handed out");
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    let at_ms = at.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(TimeCursor {
        at_ms,
        id: id.to_string(),
    })
}

/// Whether user `caller` sent the transfer (a host's transfers are no user's).
pub fn sent_by(row: &TransferRow, caller: &Caller) -> bool {
    row.sender_kind == recipient_kind::USER && row.sender_id == caller.user_id
}

/// Whether user `caller` sent the transfer or is one of its user recipients.
pub fn is_party(row: &TransferRow, caller: &Caller) -> bool {
    TransferParty::User(caller.user_id.clone()).is_party(row)
}

fn user_party(caller: &Caller, scope: Scope) -> Party {
    Party::User {
        caller: caller.clone(),
        scope,
    }
}

/// The listing's visibility rule: everything under `Scope::All`, else only the transfers the
/// party sent or receives ([`TransferParty::is_party`], applied by the store).
fn filter(party: &Party, listing: &Listing, limit: u32) -> TransferFilter {
    TransferFilter {
        visible_to: (party.scope() == Scope::Own).then(|| party.store_party()),
        pending_for: listing.pending.then(|| party.store_party()),
        status: listing.status.clone(),
        before: listing.after.clone(),
        limit,
    }
}

/// A page of the transfers user `caller` may see ([`list_for`]).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    listing: &Listing,
) -> ApiResult<TransferPage> {
    list_for(state, &user_party(caller, scope), listing).await
}

/// A page of the transfers `party` may see: one query for one row more than the page, which
/// says whether another page follows.
pub async fn list_for(
    state: &AppState,
    party: &Party,
    listing: &Listing,
) -> ApiResult<TransferPage> {
    let limit = listing.limit.clamp(1, MAX_LIMIT);
    let mut rows = state
        .store
        .list_transfers(&filter(party, listing, limit + 1))
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_after = match more {
        true => rows.last().map(cursor_text),
        false => None,
    };
    Ok(TransferPage { rows, next_after })
}

/// The emails of the senders of `rows`, by user id, in one query; `host:<host_id>` for a
/// host's transfers (decision 0029) by host id, and `request:<id>` for an upload through a
/// file request (decision 0034). A user deleted since is absent.
pub async fn sender_emails(
    state: &AppState,
    rows: &[TransferRow],
) -> ApiResult<HashMap<String, String>> {
    let (users, others): (Vec<&TransferRow>, Vec<&TransferRow>) = rows
        .iter()
        .partition(|row| row.sender_kind == recipient_kind::USER);
    let mut senders: HashMap<String, String> = others
        .into_iter()
        .map(|row| {
            let name = match row.sender_kind.as_str() {
                recipient_kind::REQUEST => super::requests::sender_name(&row.sender_id),
                _ => format!("host:{}", row.sender_id),
            };
            (row.sender_id.clone(), name)
        })
        .collect();
    let ids: HashSet<&str> = users.iter().map(|row| row.sender_id.as_str()).collect();
    if ids.is_empty() {
        return Ok(senders);
    }
    let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
    senders.extend(
        state
            .store
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|user| (user.id, user.email)),
    );
    Ok(senders)
}

/// How many chunks of each of `rows` are stored, in one query (absent: none yet).
pub async fn stored_chunks(
    state: &AppState,
    rows: &[TransferRow],
) -> ApiResult<HashMap<String, u64>> {
    let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    Ok(state.store.count_stored_chunks(&ids).await?)
}

/// A transfer user `caller` may see ([`visible_to`]).
pub async fn visible(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    id: &str,
) -> ApiResult<TransferRow> {
    visible_to(state, &user_party(caller, scope), id).await
}

/// A transfer `party` may see: everything under `Scope::All`, else only one it sent or
/// receives (a host: always only those). Someone else's transfer is answered as absent, so
/// its existence does not leak.
pub async fn visible_to(state: &AppState, party: &Party, id: &str) -> ApiResult<TransferRow> {
    let me = party.store_party();
    state
        .store
        .get_transfer(id)
        .await?
        .filter(|row| party.scope() == Scope::All || me.is_party(row))
        .ok_or_else(|| ApiError::not_found("transfer"))
}

/// One transfer with what its page shows besides the row.
#[derive(Debug, Clone)]
pub struct TransferDetail {
    pub row: TransferRow,
    /// Empty when the sender was deleted since.
    pub sender_email: String,
    pub chunks_stored: u64,
}

/// One transfer the caller may see, with its sender and progress: three queries.
pub async fn detail(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    id: &str,
) -> ApiResult<TransferDetail> {
    let row = visible(state, caller, scope, id).await?;
    let rows = std::slice::from_ref(&row);
    let sender_email = sender_emails(state, rows)
        .await?
        .remove(&row.sender_id)
        .unwrap_or_default();
    let chunks_stored = stored_chunks(state, rows)
        .await?
        .get(&row.id)
        .copied()
        .unwrap_or(0);
    Ok(TransferDetail {
        row,
        sender_email,
        chunks_stored,
    })
}

/// What verifying a transfer found.
#[derive(Debug, Clone)]
pub enum Verification {
    /// The cloud holds the chunks and read each back against its recorded SHA-256.
    Checked(VerifyReport),
    /// A site transfer (decision 0012): its chunks are on its hub, which checks them against
    /// the plan the cloud gives it (`handlers::site::verify_plan`); the cloud holds no bytes.
    AtSite(TransferRow),
}

/// Verifies a transfer the caller may see: every recorded chunk is read back from the payload
/// store and hashed (streamed, never held whole), and every index below the chunk count must
/// be recorded.
pub async fn verify(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    id: &str,
) -> ApiResult<Verification> {
    let row = visible(state, caller, scope, id).await?;
    if row.site.is_some() {
        return Ok(Verification::AtSite(row));
    }
    let tid = transfer_key(&row.id)?;
    let (mut corrupt, mut missing) = (Vec::new(), Vec::new());
    let chunks = state.store.list_chunks(&row.id).await?;
    for chunk in &chunks {
        let Some(reader) = open_chunk(state, &tid, chunk.idx as u64, Some(chunk.inline))
            .await
            .map_err(ApiError::internal)?
        else {
            missing.push(chunk.idx as u64);
            continue;
        };
        let seen = mftplus_blob::digest_stream(reader.stream, u64::MAX)
            .await
            .map_err(ApiError::internal)?;
        if hex::encode(seen.sha256) != chunk.sha256 || seen.len != chunk.size as u64 {
            corrupt.push(chunk.idx as u64);
        }
    }
    if let Some(count) = row.chunk_count {
        let recorded: HashSet<i64> = chunks.iter().map(|c| c.idx).collect();
        missing.extend(
            (0..count)
                .filter(|i| !recorded.contains(i))
                .map(|i| i as u64),
        );
        missing.sort_unstable();
        missing.dedup();
    }
    Ok(Verification::Checked(VerifyReport {
        transfer_id: row.id,
        chunks_checked: chunks.len() as u64,
        ok: corrupt.is_empty() && missing.is_empty(),
        corrupt,
        missing,
    }))
}

/// Chunk `index` of transfer `id` for reading: from its row when it is kept in the database
/// (decision 0037), else from the payload store; `None` when neither has it. `inline` is what
/// the caller's chunk row says, or `None` when it read no row (the store is asked first: one
/// primary-key read).
pub async fn open_chunk(
    state: &AppState,
    id: &TransferId,
    index: u64,
    inline: Option<bool>,
) -> Result<Option<BlobReader>, BlobError> {
    if inline != Some(false) {
        let data = state
            .store
            .chunk_data(id.as_str(), index.min(i64::MAX as u64) as i64)
            .await
            .map_err(|err| {
                BlobError::Backend(format!("reading a chunk from the database: {err}"))
            })?;
        if let Some(data) = data {
            let bytes = bytes::Bytes::from(data);
            return Ok(Some(BlobReader {
                len: bytes.len() as u64,
                stream: futures_util::stream::once(async move { Ok(bytes) }).boxed(),
            }));
        }
        if inline == Some(true) {
            return Ok(None);
        }
    }
    state.blobs.get_stream(&BlobKey::chunk(id, index)).await
}

/// The payload store's name of a transfer; an id it cannot name is no transfer of ours.
pub fn transfer_key(id: &str) -> ApiResult<TransferId> {
    TransferId::new(id).map_err(|_| ApiError::not_found("transfer"))
}

/// Whether `caller` may cancel `row` now: with `transfers:cancel` any transfer, with
/// `transfers:cancel:own` only one it sent; and only while uploading or complete. For showing
/// the action; [`cancel`] and the route's access decide.
pub fn may_cancel(state: &AppState, caller: &Caller, row: &TransferRow) -> bool {
    let open = row.status == transfer_status::UPLOADING || row.status == transfer_status::COMPLETE;
    let allowed = state.rbac.allows(&caller.role, "transfers:cancel")
        || (state.rbac.allows(&caller.role, "transfers:cancel:own") && sent_by(row, caller));
    open && allowed
}

/// Cancels a transfer (`scope` is the route's `transfers:cancel[:own]`): under `Scope::Own`
/// only the sender's own, recipients may read but not cancel, and anyone else's is absent. A
/// transfer no longer uploading or complete is a 409 (a compare-and-set, so a replayed cancel
/// is refused, never applied twice). Audited as `transfer_cancelled`.
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    ip: &str,
    id: &str,
) -> ApiResult<TransferRow> {
    let row = state
        .store
        .get_transfer(id)
        .await?
        .filter(|row| scope == Scope::All || sent_by(row, caller))
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    if !state
        .store
        .cancel_transfer(&row.id, state.clock.now_ms())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("transfer is already {}", row.status),
        ));
    }
    state
        .audit(
            AuditEvent::new("transfer_cancelled")
                .actor(&caller.email)
                .target(&row.id)
                .ip(ip),
        )
        .await;
    state
        .store
        .get_transfer(&row.id)
        .await?
        .ok_or_else(|| ApiError::not_found("transfer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_reads_its_wire_form() {
        let listing = Listing::parse(Some(" complete "), Some("1700.abc"), Some(5)).unwrap();
        assert_eq!(listing.status.as_deref(), Some("complete"));
        assert_eq!(
            listing.after,
            Some(TimeCursor {
                at_ms: 1700,
                id: "abc".into()
            })
        );
        let plain = Listing::parse(None, Some(""), None).unwrap();
        assert_eq!((plain.status, plain.after, plain.limit), (None, None, 100));
        for (after, limit) in [
            (Some("abc"), None),
            (Some("x.abc"), None),
            (Some("17."), None),
            (None, Some(0)),
            (None, Some(MAX_LIMIT + 1)),
        ] {
            assert!(
                Listing::parse(None, after, limit).is_err(),
                "{after:?} {limit:?}"
            );
        }
    }
}
