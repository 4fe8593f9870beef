//! Share links (decision 0023), for the API and the dashboard alike: a sender makes a link to a
//! transfer whose stream a browser can read, lists and revokes them; anyone holding a link reads
//! the file's ciphertext details, opens it (one counted, audited download that hands out a
//! ticket) and fetches its chunks with that ticket.
//!
//! What the cloud holds of a link is the SHA-256 of its token and of each ticket. The secret
//! that unwraps the file key is in the link's fragment, which a browser never sends: nothing
//! here could decrypt a byte, and a leaked database yields no usable link.

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::middleware::Scope;
use crate::state::AppState;
use mftplus_store::{
    transfer_status, LinkOpen, LinkRefusal, LinkRow, NewLink, NewLinkTicket, TransferRow,
};
use mftplus_types::links::{CreateLinkRequest, LINK_PAGE_PREFIX};
use mftplus_types::ErrorCode;
use serde_json::json;

/// 144 random bits: a link's token (24 characters in the URL).
pub const TOKEN_BYTES: usize = 18;
/// 256 random bits: a download ticket.
pub const TICKET_BYTES: usize = 32;
/// A ticket lapses this long after its last use: long enough for a slow chunk, short enough
/// that a copied ticket is soon worthless (a link's download limit counts opens, not tickets).
pub const TICKET_IDLE_MS: i64 = 30 * 60_000;
/// The most downloads a link may allow.
pub const MAX_DOWNLOADS: u32 = 1_000_000;

/// A new link with its token, which exists nowhere else once this is answered.
pub struct Created {
    pub link: LinkRow,
    pub token: String,
}

/// The page path of a token: `/s/<token>`.
pub fn page_path(token: &str) -> String {
    format!("{LINK_PAGE_PREFIX}{token}")
}

fn token_hash(token: &str) -> String {
    mftplus_crypto::sha256_hex(token.as_bytes())
}

/// The link's state word for people: `revoked`, `expired`, `exhausted` or `active`.
pub fn status(link: &LinkRow, now_ms: i64) -> &'static str {
    link.refusal(now_ms).map_or("active", LinkRefusal::as_str)
}

/// The coded refusal a client sees.
pub fn refusal_error(refusal: LinkRefusal) -> ApiError {
    match refusal {
        LinkRefusal::Revoked => {
            ApiError::new(ErrorCode::LinkRevoked, "the sender revoked this link")
        }
        LinkRefusal::Expired => ApiError::new(ErrorCode::LinkExpired, "this link has expired"),
        LinkRefusal::Exhausted => ApiError::new(
            ErrorCode::LinkExhausted,
            "this link's downloads are used up",
        ),
    }
}

/// A link may be made to the sender's own transfer only (the link stanza in its header is the
/// sender's work), while it is uploading or complete, kept by this cloud, and readable by a
/// browser.
fn check_linkable(row: &TransferRow) -> ApiResult<()> {
    if row.status != transfer_status::UPLOADING && row.status != transfer_status::COMPLETE {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("transfer is {}", row.status),
        ));
    }
    if row.site.is_some() {
        return Err(ApiError::new(
            ErrorCode::LinkUnsupported,
            "this transfer's ciphertext is kept on a site hub, which browsers cannot reach",
        ));
    }
    let readable = mftplus_crypto::stream::Header::parse(&row.header)
        .map(|(header, _)| header.is_browser_readable())
        .unwrap_or(false);
    if !readable {
        return Err(ApiError::new(
            ErrorCode::LinkUnsupported,
            "this transfer's stream cannot be opened in a browser: it needs a link stanza, \
             AES-256-GCM and no compression (send it with `mftctl send --link`)",
        ));
    }
    Ok(())
}

/// Makes a link to `transfer_id`, which the caller sent. Its expiry is at most, and by default,
/// the transfer's. Audited as `link_created`.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    transfer_id: &str,
    request: &CreateLinkRequest,
) -> ApiResult<Created> {
    let row = state
        .store
        .get_transfer(transfer_id)
        .await?
        .filter(|row| super::transfers::sent_by(row, caller))
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    check_linkable(&row)?;
    let now = state.clock.now_ms();
    let expires_at_ms = match &request.expires {
        Some(text) => {
            let secs = crate::handlers::parse_expiry(text)?;
            now.saturating_add(secs.min(i64::MAX as u64 / 1000) as i64 * 1000)
                .min(row.expires_at_ms)
        }
        None => row.expires_at_ms,
    };
    if let Some(max) = request.max_downloads {
        if max == 0 || max > MAX_DOWNLOADS {
            return Err(ApiError::validation(format!(
                "max_downloads must be between 1 and {MAX_DOWNLOADS}"
            )));
        }
    }
    let token = mftplus_crypto::random_token(TOKEN_BYTES);
    let link = state
        .store
        .create_link(&NewLink {
            id: uuid::Uuid::now_v7().simple().to_string(),
            transfer_id: row.id.clone(),
            token_hash: token_hash(&token),
            created_by: caller.user_id.clone(),
            created_at_ms: now,
            expires_at_ms,
            max_downloads: request.max_downloads.map(i64::from),
        })
        .await?;
    state
        .audit(
            AuditEvent::new("link_created")
                .actor(&caller.email)
                .target(&link.id)
                .ip(ip)
                .details(json!({
                    "transfer": row.id,
                    "expires_at_ms": link.expires_at_ms,
                    "max_downloads": link.max_downloads,
                })),
        )
        .await;
    Ok(Created { link, token })
}

/// The transfer's links: its sender's, or anyone's under `Scope::All` (`transfers:read`).
/// Recipients do not see the sender's links.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    transfer_id: &str,
) -> ApiResult<Vec<LinkRow>> {
    let row = state
        .store
        .get_transfer(transfer_id)
        .await?
        .filter(|row| scope == Scope::All || super::transfers::sent_by(row, caller))
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    Ok(state.store.list_links(&row.id).await?)
}

/// Revokes a link (`scope` is the route's `transfers:cancel[:own]`: the sender's own, or any).
/// Its open downloads stop at their next chunk. A link already revoked is a 409. Audited as
/// `link_revoked`.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    ip: &str,
    link_id: &str,
) -> ApiResult<LinkRow> {
    let link = state
        .store
        .get_link(link_id)
        .await?
        .ok_or_else(|| ApiError::not_found("link"))?;
    let transfer = state.store.get_transfer(&link.transfer_id).await?;
    let mine = transfer.is_some_and(|t| super::transfers::sent_by(&t, caller));
    if scope != Scope::All && !mine {
        return Err(ApiError::not_found("link"));
    }
    if !state
        .store
        .revoke_link(&link.id, state.clock.now_ms())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the link is already revoked",
        ));
    }
    state
        .audit(
            AuditEvent::new("link_revoked")
                .actor(&caller.email)
                .target(&link.id)
                .ip(ip)
                .details(json!({"transfer": link.transfer_id})),
        )
        .await;
    state
        .store
        .get_link(&link.id)
        .await?
        .ok_or_else(|| ApiError::not_found("link"))
}

/// The per-address limit on looking tokens up (`rate_limit.per_address_link_lookups_per_minute`).
pub fn limit_lookups(state: &AppState, ip: &str) -> ApiResult<()> {
    let rate = &state.config.config.rate_limit;
    if !rate.enabled {
        return Ok(());
    }
    let decision = state.limiter.check(
        ("link", ip),
        rate.per_address_link_lookups_per_minute,
        state.clock.now_secs(),
    );
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many share-link requests from this address; wait a minute",
        )
        .with_retry_after(decision.reset_secs.max(1)))
    }
}

/// The link a token names and its transfer, whatever their state; 404 for an unknown token.
async fn lookup(state: &AppState, token: &str) -> ApiResult<(LinkRow, TransferRow)> {
    let link = state
        .store
        .get_link_by_token_hash(&token_hash(token))
        .await?
        .ok_or_else(|| ApiError::not_found("link"))?;
    let transfer = state
        .store
        .get_transfer(&link.transfer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("link"))?;
    Ok((link, transfer))
}

/// Whether a link serves now: not revoked, expired or used up, and its transfer complete.
fn usable(link: &LinkRow, transfer: &TransferRow, now_ms: i64) -> ApiResult<()> {
    if let Some(refusal) = link.refusal(now_ms) {
        return Err(refusal_error(refusal));
    }
    transfer_ready(transfer)
}

/// The link a token names and its transfer, usable and complete: 404 for an unknown token,
/// the coded refusal for a revoked, expired or used-up one.
pub async fn resolve(state: &AppState, token: &str) -> ApiResult<(LinkRow, TransferRow)> {
    let (link, transfer) = lookup(state, token).await?;
    usable(&link, &transfer, state.clock.now_ms())?;
    Ok((link, transfer))
}

/// A link's transfer must be complete to be served; a cancelled one is as good as revoked.
fn transfer_ready(transfer: &TransferRow) -> ApiResult<()> {
    match transfer.status.as_str() {
        transfer_status::COMPLETE => Ok(()),
        transfer_status::UPLOADING => Err(ApiError::new(
            ErrorCode::Conflict,
            "the file is still being uploaded; try again later",
        )
        .with_retry_after(10)),
        transfer_status::CANCELLED => Err(refusal_error(LinkRefusal::Revoked)),
        _ => Err(refusal_error(LinkRefusal::Expired)),
    }
}

/// Opens the link: counts one download, stores a fresh ticket and answers it with its expiry.
/// Every open is audited as `link_opened` with the client's address, refusals too.
pub async fn open(state: &AppState, ip: &str, token: &str) -> ApiResult<(String, i64)> {
    let now = state.clock.now_ms();
    let (link, transfer) = lookup(state, token).await?;
    if let Err(err) = usable(&link, &transfer, now) {
        opened(state, ip, &link.id, Err(&err)).await;
        return Err(err);
    }
    let ticket = mftplus_crypto::random_token(TICKET_BYTES);
    let expires_at_ms = (now + TICKET_IDLE_MS).min(link.expires_at_ms);
    let outcome = state
        .store
        .open_link(
            &link.id,
            &NewLinkTicket {
                ticket_hash: mftplus_crypto::sha256_hex(ticket.as_bytes()),
                expires_at_ms,
            },
            now,
        )
        .await?;
    match outcome {
        LinkOpen::Opened(row) => {
            opened(state, ip, &row.id, Ok(&row)).await;
            Ok((ticket, expires_at_ms))
        }
        LinkOpen::Refused(refusal, row) => {
            let err = refusal_error(refusal);
            opened(state, ip, &row.id, Err(&err)).await;
            Err(err)
        }
    }
}

/// The audit record of an open: the link, the client's address, the count so far or why it
/// was refused.
async fn opened(state: &AppState, ip: &str, target: &str, outcome: Result<&LinkRow, &ApiError>) {
    let event = AuditEvent::new("link_opened").target(target).ip(ip);
    let event = match outcome {
        Ok(row) => event.details(json!({
            "transfer": row.transfer_id,
            "downloads": row.downloads,
            "max_downloads": row.max_downloads,
        })),
        Err(err) => event
            .outcome("denied")
            .details(json!({"reason": err.code.as_str()})),
    };
    state.audit(event).await;
}

/// What a chunk fetch may read: the link of a valid `ticket` for `token`, still usable (a
/// revocation or the link's expiry stops a download at its next chunk; the download limit
/// was counted at the open), and its complete transfer. A ticket used past half its idle time
/// is extended, never beyond the link's expiry.
pub async fn admit_chunk(
    state: &AppState,
    token: &str,
    ticket: &str,
) -> ApiResult<(LinkRow, TransferRow)> {
    let invalid = || {
        ApiError::new(
            ErrorCode::LinkTicketInvalid,
            "this download's ticket is missing, unknown or lapsed: open the link again",
        )
    };
    let ticket_hash = mftplus_crypto::sha256_hex(ticket.as_bytes());
    let (ticket_row, link) = state
        .store
        .get_link_ticket(&ticket_hash)
        .await?
        .ok_or_else(invalid)?;
    let same_link =
        mftplus_crypto::constant_time_eq(link.token_hash.as_bytes(), token_hash(token).as_bytes());
    let now = state.clock.now_ms();
    if !same_link || ticket_row.expires_at_ms <= now {
        return Err(invalid());
    }
    match link.refusal(now) {
        Some(LinkRefusal::Exhausted) | None => {}
        Some(refusal) => return Err(refusal_error(refusal)),
    }
    let transfer = state
        .store
        .get_transfer(&link.transfer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("link"))?;
    transfer_ready(&transfer)?;
    if ticket_row.expires_at_ms - now < TICKET_IDLE_MS / 2 {
        let until = (now + TICKET_IDLE_MS).min(link.expires_at_ms);
        state.store.extend_link_ticket(&ticket_hash, until).await?;
    }
    Ok((link, transfer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(revoked: bool, expires_at_ms: i64, max: Option<i64>, downloads: i64) -> LinkRow {
        LinkRow {
            id: "l".into(),
            transfer_id: "t".into(),
            token_hash: "h".into(),
            created_by: "u".into(),
            created_at_ms: 0,
            expires_at_ms,
            max_downloads: max,
            downloads,
            last_opened_at_ms: None,
            revoked_at_ms: revoked.then_some(5),
        }
    }

    #[test]
    fn status_words_follow_the_refusal_order() {
        assert_eq!(status(&link(false, 100, None, 7), 50), "active");
        assert_eq!(status(&link(false, 100, Some(2), 2), 50), "exhausted");
        assert_eq!(status(&link(false, 100, Some(2), 2), 100), "expired");
        assert_eq!(status(&link(true, 100, Some(2), 2), 100), "revoked");
        assert_eq!(
            refusal_error(LinkRefusal::Exhausted).code,
            ErrorCode::LinkExhausted
        );
        assert_eq!(page_path("abc"), "/s/abc");
    }
}
