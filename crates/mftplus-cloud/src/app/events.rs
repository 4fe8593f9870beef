//! The fleet's events timeline as the dashboard pages it: newest first behind an id cursor,
//! one bounded store query per page (the API's `GET /api/v1/events` reads the same rows
//! through `app::fleet::events`).

use crate::error::ApiResult;
use crate::handlers::fleet::event_to_api;
use crate::state::AppState;
use mftplus_store::EventFilter;
use mftplus_types::fleet::EventInfo;

/// Which events to list; `None` narrows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    pub customer_id: Option<String>,
    pub host_id: Option<String>,
    pub kind: Option<String>,
    /// Only events older than this id (the last of the previous page).
    pub before_id: Option<i64>,
}

/// One page of a [`Timeline`].
#[derive(Debug, Clone)]
pub struct EventPage {
    /// Newest first.
    pub events: Vec<EventInfo>,
    /// The cursor of the next (older) page, when there is one.
    pub next_before: Option<i64>,
}

/// At most `limit` events (clamped to 1–`app::fleet::MAX_LIMIT`), newest first: one query of
/// `limit + 1` rows, the extra one only telling whether there is an older page.
pub async fn page(state: &AppState, timeline: &Timeline, limit: u32) -> ApiResult<EventPage> {
    let limit = limit.clamp(1, crate::app::fleet::MAX_LIMIT);
    let rows = state
        .store
        .list_events(&filter(timeline, limit + 1))
        .await?;
    let more = rows.len() > limit as usize;
    let events: Vec<EventInfo> = rows.iter().take(limit as usize).map(event_to_api).collect();
    let next_before = more.then(|| events.last().map(|event| event.id)).flatten();
    Ok(EventPage {
        events,
        next_before,
    })
}

/// The id of the newest event the timeline (without its cursor) shows, or 0: what a live page
/// watches for, in one query of one row.
pub async fn newest(state: &AppState, timeline: &Timeline) -> ApiResult<i64> {
    let latest = Timeline {
        before_id: None,
        ..timeline.clone()
    };
    let rows = state.store.list_events(&filter(&latest, 1)).await?;
    Ok(rows.first().map_or(0, |row| row.id))
}

fn filter(timeline: &Timeline, limit: u32) -> EventFilter {
    EventFilter {
        customer_id: timeline.customer_id.clone(),
        host_id: timeline.host_id.clone(),
        kind: timeline.kind.clone(),
        after_id: None,
        before_id: timeline.before_id,
        limit,
    }
}
