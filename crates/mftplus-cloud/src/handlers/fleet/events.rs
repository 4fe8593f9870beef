//! The events timeline and the notification log.

use super::notification_to_api;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_store::EventFilter;
use mftplus_types::fleet::{EventInfo, NotificationInfo};
use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub customer: Option<String>,
    pub host: Option<String>,
    pub kind: Option<String>,
    /// Only events after this id, oldest first (for following).
    pub after_id: Option<i64>,
    /// Only events before this id, newest first (the next page back).
    pub before_id: Option<i64>,
    pub limit: Option<u32>,
}

pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Vec<EventInfo>>> {
    let filter = EventFilter {
        customer_id: query.customer,
        host_id: query.host,
        kind: query.kind,
        after_id: query.after_id,
        before_id: query.before_id,
        limit: query.limit.unwrap_or(100),
    };
    Ok(Json(crate::app::fleet::events(&state, filter).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    pub limit: Option<u32>,
}

pub async fn notifications(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<NotificationsQuery>,
) -> ApiResult<Json<Vec<NotificationInfo>>> {
    let rows = state
        .store
        .list_notifications(query.limit.unwrap_or(100).clamp(1, 1000))
        .await?;
    Ok(Json(rows.iter().map(notification_to_api).collect()))
}
