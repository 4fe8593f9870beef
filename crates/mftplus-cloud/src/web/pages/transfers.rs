//! Transfers (issue 15: "Transfers: list (own or all, by role), status and progress updating
//! live, verify, cancel"). A role with `transfers:read` sees everyone's transfers, one with
//! only `transfers:read:own` those it sent or receives: the same rule as the API, from
//! `app::transfers`. The cloud holds ciphertext only, so a file's name (inside the sealed
//! manifest) is never shown: only the recipients' keys open it.
//!
//! Bounded work: a page of the listing is three store queries (`app::transfers::list`, the
//! senders, the stored-chunk counts), one transfer's page three, whatever they hold.

use super::form;
use super::hosts::{badge, count, non_empty, query_string, when_or};
use super::CsrfOnly;
use crate::app::transfers::{self as app, Listing, TransferDetail, Verification};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::{see_other, session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use axum::Form;
use maud::{html, Markup};
use mftplus_store::{transfer_status, TransferRow};
use mftplus_types::transfers::VerifyReport;
use serde::Deserialize;
use std::collections::HashMap;

/// Transfers per page when the view names no `limit`.
pub const PAGE: u32 = 50;
/// The longest page the view may ask for.
pub const MAX_PAGE: u32 = 200;

/// The statuses in the filter, in lifecycle order.
const STATUSES: [&str; 4] = [
    transfer_status::UPLOADING,
    transfer_status::COMPLETE,
    transfer_status::CANCELLED,
    transfer_status::EXPIRED,
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// `table`: only the live region, for `assets/app.js`.
    pub fragment: String,
    /// Empty: every status; else one of [`STATUSES`].
    pub status: String,
    /// The cursor: the previous page's `next_after`.
    pub after: String,
    /// Transfers per page, 1 to [`MAX_PAGE`].
    pub limit: String,
    /// On `/live/transfers`: follow this one transfer (its page) rather than a listing.
    pub transfer: String,
}

impl View {
    /// Which transfers this view lists; 400 for an unknown status, limit or cursor.
    pub fn listing(&self) -> ApiResult<Listing> {
        let status = non_empty(&self.status);
        if let Some(status) = status.filter(|s| !STATUSES.contains(s)) {
            return Err(ApiError::validation(format!(
                "unknown status {status:?}: use {}",
                STATUSES.join(", ")
            )));
        }
        let limit = match non_empty(&self.limit) {
            None => PAGE,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(format!("limit must be between 1 and {MAX_PAGE}"))
                })?,
        };
        Listing::parse(status, non_empty(&self.after), Some(limit))
    }

    /// This view's query string (without the fragment), `?…` or empty.
    fn query(&self) -> String {
        query_string(&[
            ("status", &self.status),
            ("after", &self.after),
            ("limit", &self.limit),
        ])
    }

    /// The first page of this view with another status.
    fn with_status(&self, status: &str) -> String {
        let query = query_string(&[("status", status), ("limit", &self.limit)]);
        format!("/transfers{query}")
    }
}

/// `GET /transfers`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    Query(view): Query<View>,
) -> WebResult {
    let listing = view.listing()?;
    let listed = app::list(&state, &caller, scope, &listing).await?;
    let senders = app::sender_emails(&state, &listed.rows).await?;
    let stored = app::stored_chunks(&state, &listed.rows).await?;
    let shown = Shown {
        view: &view,
        senders: &senders,
        stored: &stored,
        may_send: state.rbac.allows(&caller.role, "transfers:create"),
        now_ms: state.clock.now_ms(),
    };
    let region = transfers_region(&shown, &listed, scope);
    if view.fragment == "table" {
        return Ok(Html(region.into_string()).into_response());
    }
    let query = view.query();
    let fragment = match query.is_empty() {
        true => "/transfers?fragment=table".to_string(),
        false => format!("/transfers{query}&fragment=table"),
    };
    let body = html! {
        @if shown.may_send {
            p { a #send-a-file href="/transfers/new" { "Send a file" } }
        }
        p.muted {
            @if scope == Scope::All { "Every transfer on this cloud, newest first." }
            @else { "The transfers you sent or receive, newest first." }
            " File names are end-to-end encrypted: only the recipients see them."
        }
        (filters(&view))
        div #transfers-live data-live={"/live/transfers" (query)} data-fragment=(fragment) {
            (region)
        }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Transfers", Some((&caller, nav)), body).into_string()).into_response())
}

/// What the rows of a listing are shown with.
struct Shown<'a> {
    view: &'a View,
    /// Sender emails by user id.
    senders: &'a HashMap<String, String>,
    /// Stored chunks by transfer id.
    stored: &'a HashMap<String, u64>,
    /// Whether the empty state may suggest sending a file.
    may_send: bool,
    now_ms: i64,
}

/// Links to each status, the current one marked.
fn filters(view: &View) -> Markup {
    let current = view.status.trim();
    let choices = std::iter::once(("", "All")).chain(STATUSES.iter().map(|s| (*s, label(s))));
    html! {
        nav.filters aria-label="Status" {
            @for (status, text) in choices {
                @if status == current {
                    a href=(view.with_status(status)) aria-current="page" { strong { (text) } }
                } @else {
                    a href=(view.with_status(status)) { (text) }
                }
            }
        }
    }
}

/// What the live region shows: a page of transfers, or what to do when there are none.
fn transfers_region(shown: &Shown<'_>, listed: &app::TransferPage, scope: Scope) -> Markup {
    let view = shown.view;
    if listed.rows.is_empty() {
        return no_transfers(view, scope, shown.may_send);
    }
    html! {
        table #transfers {
            caption.muted {
                (count(listed.rows.len(), "transfer"))
                @if !view.after.is_empty() { " (a later page)" }
            }
            thead { tr {
                th scope="col" { "Transfer" } th scope="col" { "File" } th scope="col" { "Sender" }
                th scope="col" { "Recipients" } th scope="col" { "Status" }
                th scope="col" { "Progress" } th scope="col" { "Created" } th scope="col" { "Expires" }
            } }
            tbody {
                @for row in &listed.rows { (transfer_row(shown, row)) }
            }
        }
        p.pager {
            @if !view.after.is_empty() {
                a href=(view.with_status(view.status.trim())) { "First page" } " "
            }
            @if let Some(after) = &listed.next_after {
                a rel="next" href={"/transfers" (query_string(&[("status", &view.status), ("after", after), ("limit", &view.limit)]))} { "Next page" }
            }
        }
    }
}

fn transfer_row(shown: &Shown<'_>, row: &TransferRow) -> Markup {
    let stored = shown.stored.get(&row.id).copied().unwrap_or(0);
    html! {
        tr data-transfer=(row.id) data-status=(row.status) {
            td { a href={"/transfers/" (row.id)} title=(row.id) { code { (short_id(&row.id)) } } }
            td { (file_name()) }
            td { (sender(shown.senders.get(&row.sender_id), &row.sender_id)) }
            td { (recipients_in_short(row)) }
            td { (status(&row.status)) }
            td { (progress(row, stored)) }
            td { (when(&crate::clock::rfc3339(row.created_at_ms), shown.now_ms)) }
            td { (expiry(row, shown.now_ms)) }
        }
    }
}

/// The empty state: what to do to see a transfer here.
fn no_transfers(view: &View, scope: Scope, may_send: bool) -> Markup {
    html! {
        div.empty #no-transfers {
            @if !view.after.is_empty() {
                p { "No more transfers. " a href=(view.with_status(view.status.trim())) { "Back to the first page" } }
            } @else if let Some(status) = non_empty(&view.status) {
                p { "No transfer is " (label(status).to_lowercase()) ". " a href="/transfers" { "See every transfer" } }
            } @else {
                p { @if scope == Scope::All { "Nobody has sent a file yet." } @else { "You have not sent or received a file yet." } }
                @if may_send {
                    p { a href="/transfers/new" { "Send one from this browser" } ", or from your workstation with "
                        code { "mftctl send FILE RECIPIENT_EMAIL" } "; it appears here while it uploads." }
                } @else {
                    p { "A transfer appears here as soon as someone starts sending one." }
                }
            }
        }
    }
}

/// `GET /transfers/{transfer_id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(transfer_id): ApiPath<String>,
    Query(view): Query<View>,
) -> WebResult {
    let detail = app::detail(&state, &caller, scope, &transfer_id).await?;
    let region = detail_region(&detail, state.clock.now_ms());
    if view.fragment == "summary" {
        return Ok(Html(region.into_string()).into_response());
    }
    let links = super::links::section(&state, &caller, &detail.row).await;
    Ok(detail_page(&state, &caller, &detail, region, None, links))
}

/// A transfer's page around its live region, with the actions the caller may take and, after
/// a verification, its result.
fn detail_page(
    state: &AppState,
    caller: &Caller,
    detail: &TransferDetail,
    region: Markup,
    verification: Option<&Verification>,
    links: Markup,
) -> axum::response::Response {
    let id = &detail.row.id;
    let body = html! {
        @if let Some(found) = verification { (verification_result(found)) }
        div #transfer-live data-live={"/live/transfers" (query_string(&[("transfer", id)]))}
            data-fragment={"/transfers/" (id) "?fragment=summary"} {
            (region)
        }
        (actions(state, caller, &detail.row))
        (links)
        p { a href="/transfers" { "All transfers" } }
    };
    let title = format!("Transfer {}", short_id(id));
    let nav = Nav::of(state, caller);
    Html(page(&title, Some((caller, nav)), body).into_string()).into_response()
}

/// What follows the transfer live: its facts and its recipients.
fn detail_region(detail: &TransferDetail, now_ms: i64) -> Markup {
    let row = &detail.row;
    let sender_email = Some(&detail.sender_email).filter(|email| !email.is_empty());
    html! {
        dl.facts #transfer-summary {
            dt { "Transfer" } dd { code { (row.id) } }
            dt { "File" } dd { (file_name()) }
            dt { "Sender" } dd { (sender(sender_email, &row.sender_id)) }
            dt { "Status" } dd { (status(&row.status)) }
            dt { "Chunks stored" } dd { (progress(row, detail.chunks_stored)) }
            dt { "Chunk size" } dd { (size(row.chunk_size)) }
            dt { "Created" } dd { (when(&crate::clock::rfc3339(row.created_at_ms), now_ms)) }
            @if let Some(at) = row.completed_at_ms {
                dt { "Completed" } dd { (when(&crate::clock::rfc3339(at), now_ms)) }
            }
            @if let Some(at) = row.cancelled_at_ms {
                dt { "Cancelled" } dd { (when(&crate::clock::rfc3339(at), now_ms)) }
            }
            dt { "Expires" } dd { (expiry(row, now_ms)) }
            @if let Some(site) = &row.site {
                dt { "Site" } dd { "Stored on site hub " code { (site) } " (the cloud holds no bytes of it)" }
            }
        }
        h2 { "Recipients" }
        table #recipients {
            thead { tr { th scope="col" { "Recipient" } th scope="col" { "Kind" } th scope="col" { "Downloaded" } } }
            tbody {
                @for recipient in &row.recipients {
                    tr data-recipient=(recipient.id) {
                        td { (recipient.display) }
                        td { (recipient.kind) }
                        td {
                            @if recipient.awaiting_grant {
                                span.muted.awaiting-grant title="Sent before they had an encryption key; the sender's next mftctl run wraps the file key to the key they register." {
                                    "Waiting for the sender to grant access"
                                }
                            } @else {
                                (when_or(recipient.downloaded_at_ms.map(crate::clock::rfc3339).as_deref(), now_ms, "Not yet"))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Verify for whoever may see the transfer; cancel, behind a confirmation, for whoever may
/// cancel it.
fn actions(state: &AppState, caller: &Caller, row: &TransferRow) -> Markup {
    let csrf = session::csrf(caller);
    html! {
        h2 { "Actions" }
        form.card method="post" action={"/transfers/" (row.id) "/verify"} {
            input type="hidden" name="csrf" value=(csrf);
            p { "Read every stored chunk back and check it against the SHA-256 recorded at upload." }
            button #verify type="submit" { "Verify" }
        }
        @if app::may_cancel(state, caller, row) {
            form.card #cancel-form method="post" action={"/transfers/" (row.id) "/cancel"} {
                input type="hidden" name="csrf" value=(csrf);
                p { "Cancelling stops the upload or the downloads at once; the recipients can no "
                    "longer fetch it, and the stored chunks are removed when it expires." }
                p.confirm {
                    input #confirm type="checkbox" name="confirm" value="yes" required;
                    " "
                    label for="confirm" { "Yes, cancel this transfer" }
                }
                button.secondary #cancel type="submit" { "Cancel transfer" }
            }
        }
    }
}

fn verification_result(found: &Verification) -> Markup {
    match found {
        Verification::Checked(report) => checked(report),
        Verification::AtSite(row) => html! {
            div.card #verification role="status" {
                p { "This transfer's chunks are on site hub "
                    code { (row.site.as_deref().unwrap_or("")) }
                    ", which checks them: run "
                    code { "mftctl transfers verify " (row.id) }
                    " on the site's network (through the hub)." }
            }
        },
    }
}

fn checked(report: &VerifyReport) -> Markup {
    let indexes = |list: &[u64]| {
        list.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        div.card #verification role="status" data-ok=(report.ok) {
            @if report.ok {
                p { (badge("ok", "Verified")) " All " (count(report.chunks_checked as usize, "chunk"))
                    " read back and match their recorded SHA-256." }
            } @else {
                p { (badge("down", "Damaged")) " " (report.chunks_checked) " checked." }
                @if !report.corrupt.is_empty() {
                    p.error { "Corrupt (bytes no longer match): chunks " (indexes(&report.corrupt)) }
                }
                @if !report.missing.is_empty() {
                    p.error { "Missing from the payload store: chunks " (indexes(&report.missing)) }
                }
                p { "The sender must send the file again." }
            }
        }
    }
}

/// `POST /transfers/{transfer_id}/verify`: the transfer's page with the result.
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(transfer_id): ApiPath<String>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let found = app::verify(&state, &caller, scope, &transfer_id).await?;
    // The route's scope is transfers:read[:own], the same as the page's.
    let detail = app::detail(&state, &caller, scope, &transfer_id).await?;
    let region = detail_region(&detail, state.clock.now_ms());
    let links = super::links::section(&state, &caller, &detail.row).await;
    Ok(detail_page(
        &state,
        &caller,
        &detail,
        region,
        Some(&found),
        links,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Cancel {
    csrf: String,
    /// The confirmation box: `yes` when ticked.
    confirm: String,
}

/// `POST /transfers/{transfer_id}/cancel`: back to the transfer's page.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(transfer_id): ApiPath<String>,
    submitted: Result<Form<Cancel>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    if fields.confirm != "yes" {
        return Err(
            ApiError::validation("tick the confirmation box to cancel the transfer").into(),
        );
    }
    let row = app::cancel(&state, &caller, scope, &ip, &transfer_id).await?;
    Ok(see_other(&format!("/transfers/{}", row.id)))
}

/// What a `/live/transfers` stream follows, as its caller may see it: a page of the listing
/// (the same view as the page's) or one transfer.
#[derive(Debug, Clone)]
pub struct Watched {
    caller: Caller,
    scope: Scope,
    what: Watching,
}

#[derive(Debug, Clone)]
enum Watching {
    Listing(Listing),
    One(String),
}

impl Watched {
    /// What `view` follows: 400 for a view the page would refuse, 404 for a transfer the
    /// caller may not see, as on its page.
    pub async fn start(
        state: &AppState,
        caller: Caller,
        scope: Scope,
        view: &View,
    ) -> ApiResult<Watched> {
        let what = match non_empty(&view.transfer) {
            Some(id) => {
                app::visible(state, &caller, scope, id).await?;
                Watching::One(id.to_string())
            }
            None => Watching::Listing(view.listing()?),
        };
        Ok(Watched {
            caller,
            scope,
            what,
        })
    }

    /// A hash of what the page shows that can change: statuses, stored chunks and bytes,
    /// completion, downloads; and which transfers a listing holds. The page's own queries.
    pub async fn fingerprint(&self, state: &AppState) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let rows = match &self.what {
            Watching::Listing(listing) => {
                let listed = app::list(state, &self.caller, self.scope, listing)
                    .await
                    .ok()?;
                listed.next_after.hash(&mut hasher);
                listed.rows
            }
            Watching::One(id) => vec![app::visible(state, &self.caller, self.scope, id)
                .await
                .ok()?],
        };
        let stored = app::stored_chunks(state, &rows).await.ok()?;
        for row in &rows {
            (&row.id, &row.status, row.ciphertext_bytes, row.chunk_count).hash(&mut hasher);
            stored.get(&row.id).hash(&mut hasher);
            for recipient in &row.recipients {
                (
                    &recipient.id,
                    recipient.downloaded_at_ms,
                    recipient.awaiting_grant,
                )
                    .hash(&mut hasher);
            }
        }
        Some(hasher.finish())
    }
}

/// The status in words, with its class for colour.
fn status(status: &str) -> Markup {
    badge(status, label(status))
}

pub fn label(status: &str) -> &'static str {
    match status {
        "uploading" => "Uploading",
        "complete" => "Complete",
        "cancelled" => "Cancelled",
        "expired" => "Expired",
        _ => "Unknown",
    }
}

/// The cloud never sees the name: it is in the sealed manifest.
fn file_name() -> Markup {
    html! {
        span.muted title="The file name is inside the encrypted manifest; only the recipients' keys open it." {
            "Encrypted"
        }
    }
}

fn sender(email: Option<&String>, id: &str) -> Markup {
    match email {
        Some(email) => html! { (email) },
        None => html! { span.muted title=(id) { "Deleted user" } },
    }
}

/// The first recipients, and how many more.
fn recipients_in_short(row: &TransferRow) -> Markup {
    const SHOWN: usize = 3;
    let downloaded = row
        .recipients
        .iter()
        .filter(|r| r.downloaded_at_ms.is_some())
        .count();
    let waiting = crate::app::grants::waiting(row).count();
    html! {
        @for (at, recipient) in row.recipients.iter().take(SHOWN).enumerate() {
            @if at > 0 { ", " }
            (recipient.display)
        }
        @if row.recipients.len() > SHOWN { " and " (row.recipients.len() - SHOWN) " more" }
        @if downloaded > 0 { br; span.muted { (downloaded) " of " (row.recipients.len()) " downloaded" } }
        @if waiting > 0 { br; span.muted.awaiting-grant { (waiting) " waiting for the sender to grant access" } }
    }
}

/// Chunks stored of the chunk count (known once the sender completed), and their bytes.
fn progress(row: &TransferRow, stored: u64) -> Markup {
    html! {
        span.progress data-stored=(stored) {
            @match row.chunk_count {
                Some(total) => { (stored) " / " (total) " chunks" },
                None => { (count(stored as usize, "chunk")) },
            }
        }
        br;
        span.muted { (size(row.ciphertext_bytes))
            @if row.status == transfer_status::UPLOADING && row.chunk_count.is_none() { " so far" } }
    }
}

fn expiry(row: &TransferRow, now_ms: i64) -> Markup {
    let ended = row.status == transfer_status::CANCELLED || row.status == transfer_status::EXPIRED;
    match ended {
        true => html! { span.muted { "—" } },
        false => when(&crate::clock::rfc3339(row.expires_at_ms), now_ms),
    }
}

/// The id's last eight characters: the first ones of a time-ordered id are alike for
/// transfers created close together.
fn short_id(id: &str) -> String {
    let tail: String = {
        let chars: Vec<char> = id.chars().collect();
        chars[chars.len().saturating_sub(8)..].iter().collect()
    };
    match tail.len() < id.len() {
        true => format!("…{tail}"),
        false => tail,
    }
}

fn size(count: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if count < 1024 {
        return format!("{} B", count.max(0));
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_names_its_transfers() {
        let plain = View::default().listing().unwrap();
        assert_eq!((plain.status, plain.limit), (None, PAGE));
        let narrowed = View {
            status: "complete".into(),
            limit: "2".into(),
            after: "17.abc".into(),
            ..View::default()
        };
        let listing = narrowed.listing().unwrap();
        assert_eq!(listing.status.as_deref(), Some("complete"));
        assert_eq!(listing.limit, 2);
        assert_eq!(narrowed.query(), "?status=complete&after=17.abc&limit=2");
        assert_eq!(narrowed.with_status(""), "/transfers?limit=2");
        for bad in [
            View {
                status: "done".into(),
                ..View::default()
            },
            View {
                limit: "0".into(),
                ..View::default()
            },
            View {
                limit: "lots".into(),
                ..View::default()
            },
            View {
                after: "nope".into(),
                ..View::default()
            },
        ] {
            assert!(bad.listing().is_err(), "{bad:?}");
        }
        for status in STATUSES {
            assert_ne!(label(status), "Unknown");
        }
    }

    #[test]
    fn ids_and_sizes_read_well() {
        assert_eq!(short_id("0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4"), "…e1f2a3b4");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(size(1000), "1000 B");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
