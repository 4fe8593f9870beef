//! The fleet's events (issue 15: "Events: a live stream of liveness, backups and op
//! transitions"): hosts going quiet and coming back, missed backups, enrollments, ops moving
//! through their lifecycle, newest first.
//!
//! Bounded work: a page is one store query of at most [`PAGE`] + 1 events with the filters in
//! the query and an id cursor (`app::events::page`). The first page follows new events live
//! (`/live/events`, one one-row query a second); older pages stay as they are.

use super::hosts::{badge, count, non_empty, query_string, shorten, title_case};
use crate::app::events::{EventPage, Timeline};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::WebResult;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use mftplus_types::fleet::EventInfo;
use serde::Deserialize;

/// Events per page.
pub const PAGE: u32 = 100;

/// Kinds offered while typing the filter (any kind may be typed).
const KINDS: [&str; 14] = [
    "host_enrolled",
    "host_re_enrolled",
    "host_stale",
    "host_down",
    "host_recovered",
    "expected_backup_missed",
    "desired_published",
    "op_pending_signature",
    "op_signed",
    "op_delivered",
    "op_executed",
    "op_failed",
    "op_rejected",
    "op_expired",
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// `table`: only the live region, for `assets/app.js`.
    pub fragment: String,
    pub customer: String,
    pub host: String,
    pub kind: String,
    /// The cursor: events older than this id.
    pub before: String,
}

impl View {
    /// The filters as a query string, `?…` or empty (without the cursor).
    pub fn query(&self) -> String {
        self.query_before("")
    }

    fn query_before(&self, before: &str) -> String {
        query_string(&[
            ("customer", &self.customer),
            ("host", &self.host),
            ("kind", &self.kind),
            ("before", before),
        ])
    }

    fn filtered(&self) -> bool {
        [&self.customer, &self.host, &self.kind]
            .iter()
            .any(|value| non_empty(value).is_some())
    }
}

/// What a view lists (400 for a cursor that is not an event id).
pub fn timeline(view: &View) -> ApiResult<Timeline> {
    let before_id = match non_empty(&view.before) {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| ApiError::validation("before must be an event id"))?,
        ),
    };
    Ok(Timeline {
        customer_id: non_empty(&view.customer).map(str::to_string),
        host_id: non_empty(&view.host).map(str::to_string),
        kind: non_empty(&view.kind).map(str::to_string),
        before_id,
    })
}

/// `GET /events`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    Query(view): Query<View>,
) -> WebResult {
    let listing = crate::app::events::page(&state, &timeline(&view)?, PAGE).await?;
    let region = events_region(&view, &listing, state.clock.now_ms());
    if view.fragment == "table" {
        return Ok(Html(region.into_string()).into_response());
    }
    let query = view.query();
    let fragment = match query.is_empty() {
        true => "/events?fragment=table".to_string(),
        false => format!("/events{query}&fragment=table"),
    };
    let first_page = non_empty(&view.before).is_none();
    let body = html! {
        p.muted { "What happened across the fleet: hosts enrolling, going quiet and coming back, "
            "missed backups, and signed operations moving on." }
        (filters(&view))
        @if first_page {
            div #events-live data-live={"/live/events" (query)} data-fragment=(fragment) aria-live="polite" {
                (region)
            }
        } @else {
            div #events-page { (region) }
        }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Events", Some((&caller, nav)), body).into_string()).into_response())
}

fn filters(view: &View) -> Markup {
    html! {
        form.card #event-filters method="get" action="/events" {
            div {
                label for="customer" { "Customer" }
                input #customer type="text" name="customer" value=(view.customer) placeholder="customer id";
            }
            div {
                label for="host" { "Host" }
                input #host type="text" name="host" value=(view.host) placeholder="host id";
            }
            div {
                label for="kind" { "Kind" }
                input #kind type="text" name="kind" value=(view.kind) list="event-kinds" placeholder="host_down";
            }
            datalist #event-kinds {
                @for kind in KINDS { option value=(kind) {} }
            }
            p { button type="submit" { "Filter" } " " a href="/events" { "Clear" } }
        }
    }
}

/// What the live region shows: a page of events, or what to do when there are none.
fn events_region(view: &View, listing: &EventPage, now_ms: i64) -> Markup {
    if listing.events.is_empty() {
        return html! {
            div.empty #no-events {
                @if view.filtered() {
                    p { "No event matches these filters (customer, host and kind must match exactly). "
                        a href="/events" { "Every event" } }
                } @else if non_empty(&view.before).is_some() {
                    p { "No older event. " a href="/events" { "The newest events" } }
                } @else {
                    p { "No event yet. Events appear when a host enrolls with "
                        code { "mftplus agent enroll" } ", when it stops reporting or comes back, "
                        "when a backup is missed and when an operation moves on." }
                }
            }
        };
    }
    html! {
        table #events {
            caption.muted { (count(listing.events.len(), "event")) ", newest first" }
            thead { tr {
                th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Severity" }
                th scope="col" { "Customer" } th scope="col" { "Host" } th scope="col" { "Details" }
            } }
            tbody {
                @for event in &listing.events { (row(view, event, now_ms)) }
            }
        }
        @if let Some(before) = listing.next_before {
            p.pager { a rel="next" href={"/events" (view.query_before(&before.to_string()))} { "Older events" } }
        }
    }
}

fn row(view: &View, event: &EventInfo, now_ms: i64) -> Markup {
    let details = event.details.to_string();
    html! {
        tr data-event=(event.id) data-kind=(event.kind) {
            td { (when(&event.at, now_ms)) }
            td {
                a href={"/events" (query_string(&[("customer", &view.customer), ("host", &view.host), ("kind", &event.kind)]))} {
                    code { (event.kind) }
                }
                @if let Some(guest) = &event.guest_id { br; span.muted { "guest " (guest) } }
                @if let Some(op) = &event.op_id { br; span.muted { "op " (op) } }
            }
            td { (badge(&event.severity, title_case(&event.severity))) }
            td {
                @if let Some(customer) = &event.customer_id {
                    a href={"/events" (query_string(&[("customer", customer)]))} { (customer) }
                }
            }
            td {
                @if let Some(host) = &event.host_id {
                    a href={"/hosts/" (host)} { (host) }
                }
            }
            td { code.details { (shorten(&details, 300)) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_names_its_events() {
        let view = View {
            customer: "kovacs".into(),
            kind: "host_down".into(),
            before: "17".into(),
            ..View::default()
        };
        let asked = timeline(&view).unwrap();
        assert_eq!(asked.before_id, Some(17));
        assert_eq!(asked.host_id, None);
        assert_eq!(view.query(), "?customer=kovacs&kind=host_down");
        assert_eq!(
            view.query_before("9"),
            "?customer=kovacs&kind=host_down&before=9"
        );
        assert!(timeline(&View {
            before: "soon".into(),
            ..View::default()
        })
        .is_err());
    }
}
