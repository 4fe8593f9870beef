//! The audit log (issue 15: "Audit log: filter, export, and the chain's verification result
//! computed by the server with the first broken entry named").
//!
//! Bounded work: the listing is one store query of at most [`PAGE`] + 1 entries, with the
//! filters in the query (`app::audit::search`) and a `seq` cursor; the export and the
//! verification read the log page by page (`app::audit`). The server's verification is a
//! convenience and the page says so: the independent check is `mftctl audit verify`.

use super::form;
use super::hosts::{badge, non_empty, query_string, shorten};
use super::CsrfOnly;
use crate::app::audit::{ExportFormat, Search, SearchPage};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::middleware::ClientIp;
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::{session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use axum::Form;
use chrono::{NaiveDate, NaiveDateTime};
use http::{header, HeaderValue};
use maud::{html, Markup};
use mftplus_types::api::{AuditEntry, AuditVerification};
use serde::Deserialize;

/// Entries per page.
pub const PAGE: u32 = 100;

/// The line that checks the chain without trusting the server.
const INDEPENDENT_CHECK: &str = "mftctl audit verify";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct View {
    pub event: String,
    pub actor: String,
    /// A date (`2024-05-01`), a minute (`2024-05-01T14:00`, UTC) or an RFC 3339 time.
    pub from: String,
    /// The same forms; the whole day, minute or second named is included.
    pub to: String,
    /// Empty: newest first; `oldest`: oldest first.
    pub order: String,
    /// The last `seq` of the previous page.
    pub cursor: String,
}

impl View {
    fn oldest_first(&self) -> bool {
        self.order == "oldest"
    }

    /// The filters and order as a query string, without the cursor.
    fn query(&self) -> String {
        self.query_with("")
    }

    fn query_with(&self, cursor: &str) -> String {
        query_string(&[
            ("event", &self.event),
            ("actor", &self.actor),
            ("from", &self.from),
            ("to", &self.to),
            ("order", &self.order),
            ("cursor", cursor),
        ])
    }

    fn filtered(&self) -> bool {
        [&self.event, &self.actor, &self.from, &self.to]
            .iter()
            .any(|value| non_empty(value).is_some())
    }
}

/// What a view asks the store for (400 for a time or cursor that does not parse).
pub fn search(view: &View) -> ApiResult<Search> {
    let cursor = match non_empty(&view.cursor) {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| ApiError::validation("cursor must be an entry's number"))?,
        ),
    };
    if !matches!(view.order.as_str(), "" | "newest" | "oldest") {
        return Err(ApiError::validation("order must be newest or oldest"));
    }
    Ok(Search {
        event: non_empty(&view.event).map(str::to_string),
        actor: non_empty(&view.actor).map(str::to_string),
        from_ms: time_bound("from", &view.from, false)?,
        until_ms: time_bound("to", &view.to, true)?,
        newest_first: !view.oldest_first(),
        cursor,
        limit: PAGE,
    })
}

/// A time typed into the form, in UTC, as Unix milliseconds. As the upper bound (`end`), the
/// whole day, minute or second it names is included.
fn time_bound(name: &str, text: &str, end: bool) -> ApiResult<Option<i64>> {
    let Some(text) = non_empty(text) else {
        return Ok(None);
    };
    let (at, span_ms) = if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        (at.timestamp_millis(), 1)
    } else if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        (midnight.and_utc().timestamp_millis(), 86_400_000)
    } else if let Some((at, span)) = [("%Y-%m-%dT%H:%M", 60_000), ("%Y-%m-%dT%H:%M:%S", 1_000)]
        .iter()
        .find_map(|(format, span)| {
            NaiveDateTime::parse_from_str(&text.replacen(' ', "T", 1), format)
                .ok()
                .map(|at| (at.and_utc().timestamp_millis(), *span))
        })
    {
        (at, span)
    } else {
        return Err(ApiError::validation(format!(
            "{name} must be a date (2024-05-01), a time in UTC (2024-05-01T14:00) or RFC 3339"
        )));
    };
    Ok(Some(if end { at + span_ms } else { at }))
}

/// `GET /audit`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    Query(view): Query<View>,
) -> WebResult {
    let listing = crate::app::audit::search(&state, &search(&view)?).await?;
    let now_ms = state.clock.now_ms();
    let body = html! {
        p.muted { "Every security event, hash-chained: each entry's hash covers the one before, "
            "so a changed, inserted or removed entry breaks the chain from there on." }
        (tools(&caller))
        (filters(&view))
        (entries(&view, &listing, now_ms))
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Audit log", Some((&caller, nav)), body).into_string()).into_response())
}

/// Export links, the verification button and the independent check's line.
fn tools(caller: &Caller) -> Markup {
    html! {
        div.card #audit-tools {
            p { "Download the whole log: "
                a #export-json href="/audit/export?format=json" download { "JSON" } " · "
                a #export-csv href="/audit/export?format=csv" download { "CSV" } }
            form method="post" action="/audit/verify" {
                input type="hidden" name="csrf" value=(session::csrf(caller));
                button #verify type="submit" { "Verify the chain" }
            }
            (independent_check())
        }
    }
}

fn independent_check() -> Markup {
    html! {
        p.muted { "The server's check is a convenience: a server that was broken into could "
            "claim anything about its own log. The independent check recomputes every hash on "
            "your workstation:" }
        code.secret.command #independent-check { (INDEPENDENT_CHECK) }
        button.secondary type="button" data-copy="independent-check" hidden { "Copy" }
    }
}

fn filters(view: &View) -> Markup {
    html! {
        form.card #audit-filters method="get" action="/audit" {
            div {
                label for="event" { "Event" }
                input #event type="text" name="event" value=(view.event) placeholder="login_failed";
            }
            div {
                label for="actor" { "Actor" }
                input #actor type="text" name="actor" value=(view.actor) placeholder="alice@example.com";
            }
            div {
                label for="from" { "From (UTC)" }
                input #from type="text" name="from" value=(view.from) placeholder="2024-05-01 or 2024-05-01T14:00";
            }
            div {
                label for="to" { "To (UTC, included)" }
                input #to type="text" name="to" value=(view.to) placeholder="2024-05-31";
            }
            div {
                label for="order" { "Order" }
                select #order name="order" {
                    option value="" selected[!view.oldest_first()] { "Newest first" }
                    option value="oldest" selected[view.oldest_first()] { "Oldest first" }
                }
            }
            p { button type="submit" { "Filter" } " " a href="/audit" { "Clear" } }
        }
    }
}

fn entries(view: &View, listing: &SearchPage, now_ms: i64) -> Markup {
    if listing.entries.is_empty() {
        return html! {
            div.empty #no-entries {
                @if view.filtered() {
                    p { "No entry matches these filters. Event and actor must match exactly. "
                        a href="/audit" { "Clear the filters" } }
                } @else if non_empty(&view.cursor).is_some() {
                    p { "No more entries. " a href={"/audit" (view.query())} { "Back to the first page" } }
                } @else {
                    p { "The log is empty. Sign-ins, key and user changes and refused requests are "
                        "recorded here as they happen." }
                }
            }
        };
    }
    let order = if view.oldest_first() {
        "oldest first"
    } else {
        "newest first"
    };
    html! {
        table #audit {
            caption.muted { (entry_count(listing.entries.len() as u64)) ", " (order) }
            thead { tr {
                th scope="col" { "Seq" } th scope="col" { "Time" } th scope="col" { "Event" }
                th scope="col" { "Actor" } th scope="col" { "Target" } th scope="col" { "Outcome" }
                th scope="col" { "Client IP" } th scope="col" { "Details" }
            } }
            tbody {
                @for entry in &listing.entries { (row(entry, now_ms)) }
            }
        }
        @if let Some(next) = listing.next_cursor {
            p.pager { a rel="next" href={"/audit" (view.query_with(&next.to_string()))} { "Next page" } }
        }
    }
}

fn entry_count(n: u64) -> String {
    match n {
        1 => "1 entry".into(),
        _ => format!("{n} entries"),
    }
}

fn row(entry: &AuditEntry, now_ms: i64) -> Markup {
    let details = mftplus_crypto::canonical_json(&entry.details);
    let shown = shorten(&details, 300);
    html! {
        tr data-seq=(entry.seq) {
            td { (entry.seq) }
            td { (when(&entry.time, now_ms)) }
            td { code { (entry.event) } }
            td { (entry.actor) }
            td { (entry.target) }
            td { (badge(&entry.outcome, &entry.outcome)) }
            td { (entry.client_ip) }
            td {
                @if shown.len() < details.len() {
                    code.details title=(details) { (shown) }
                } @else {
                    code.details { (details) }
                }
            }
        }
    }
}

/// `POST /audit/verify`: the server walks the whole chain and says what it found.
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    session::check_csrf(&caller, &form(submitted)?.csrf)?;
    let answer = crate::app::audit::verify(&state, &caller, &ip).await?;
    let body = html! {
        (verdict(&answer))
        (independent_check())
        p { a href="/audit" { "Back to the audit log" } }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Audit chain", Some((&caller, nav)), body).into_string()).into_response())
}

fn verdict(answer: &AuditVerification) -> Markup {
    let range = match (answer.first_seq, answer.last_seq) {
        (Some(first), Some(last)) => format!(" (entries {first} to {last})"),
        _ => String::new(),
    };
    html! {
        @match &answer.first_broken {
            None => div.card #verdict data-ok="true" {
                p role="status" { strong { "OK: the chain is intact." } " "
                    (entry_count(answer.checked)) " checked" (range) "." }
                @if let Some(head) = &answer.head { p.muted { "Head: " code { (head) } } }
            },
            Some(broken) => div.card #verdict data-ok="false" {
                p.error role="alert" { strong { "Broken at entry " (broken.seq) ": " } (broken.message)
                    " (" code { (broken.reason) } ")." }
                p { (entry_count(answer.checked))
                    " before it verified" (range) ". "
                    a href={"/audit?order=oldest&cursor=" (broken.seq - 1)} { "Show entry " (broken.seq) } }
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Export {
    format: String,
}

/// `GET /audit/export?format=json|csv`: the API's export (audited as `audit_exported`), as a
/// download.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    Query(query): Query<Export>,
) -> WebResult {
    let format = ExportFormat::parse(non_empty(&query.format))?;
    let mut response = crate::app::audit::export(&state, &caller, &ip, format).await?;
    let stamp = chrono::DateTime::from_timestamp_millis(state.clock.now_ms())
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ");
    let disposition = format!(
        "attachment; filename=\"mftplus-audit-{stamp}.{}\"",
        format.as_str()
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_times_become_bounds() {
        let day = time_bound("from", "2024-05-01", false).unwrap().unwrap();
        assert_eq!(day, 1_714_521_600_000);
        let end = time_bound("to", "2024-05-01", true).unwrap().unwrap();
        assert_eq!(end, day + 86_400_000, "the whole day is included");
        let minute = time_bound("to", "2024-05-01 14:00", true).unwrap().unwrap();
        assert_eq!(minute, day + 14 * 3_600_000 + 60_000);
        let exact = time_bound("from", "2024-05-01T14:00:00+02:00", false);
        assert_eq!(exact.unwrap().unwrap(), day + 12 * 3_600_000);
        assert_eq!(time_bound("from", " ", false).unwrap(), None);
        assert!(time_bound("from", "yesterday", false).is_err());

        let view = View {
            event: "login_failed".into(),
            order: "oldest".into(),
            cursor: "41".into(),
            ..View::default()
        };
        let asked = search(&view).unwrap();
        assert_eq!((asked.newest_first, asked.cursor), (false, Some(41)));
        assert_eq!(
            view.query_with("99"),
            "?event=login_failed&order=oldest&cursor=99"
        );
        assert!(search(&View {
            cursor: "x".into(),
            ..View::default()
        })
        .is_err());
    }
}
