//! Hosts and guests as operators see them, and the desired state as both operators and the
//! host's own agent read it.

use super::{desired_of, find_host};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::HeaderValue;
use mftplus_types::fleet::{DesiredStateResponse, GuestInfo, HostInfo};
use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostsQuery {
    pub customer: Option<String>,
    /// Only hosts in this liveness, as the listing shows it: `ok`, `stale`, `down`, or `never`
    /// (never reported).
    pub liveness: Option<String>,
    /// `id` (the default, bytewise) or `last_report`: never reported first, then the oldest
    /// report.
    pub sort: Option<String>,
    /// The `x-next-after` header of the previous page (in `id` order, the last host id).
    pub after: Option<String>,
    /// At most this many hosts (1–1000, default 1000).
    pub limit: Option<u32>,
}

/// The header naming the cursor of the next page, present only when one follows.
pub const NEXT_AFTER_HEADER: &str = "x-next-after";

/// The `limit` of a listing (1–1000, default 1000), or the validation error.
pub(super) fn listing_limit(limit: Option<u32>) -> ApiResult<u32> {
    let limit = limit.unwrap_or(crate::app::fleet::MAX_LIMIT);
    if limit == 0 || limit > crate::app::fleet::MAX_LIMIT {
        return Err(ApiError::validation(format!(
            "limit must be between 1 and {}",
            crate::app::fleet::MAX_LIMIT
        )));
    }
    Ok(limit)
}

/// `rows` as JSON with the `x-next-after` header when another page follows.
pub(super) fn page_response<T: serde::Serialize>(rows: T, next_after: Option<String>) -> Response {
    let mut response = Json(rows).into_response();
    if let Some(next) = next_after.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(NEXT_AFTER_HEADER, next);
    }
    response
}

/// A page of hosts by id (or by last report); a listing cut short says where it goes on
/// (`x-next-after`), so a client written before paging can tell it did not get everything.
pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostsQuery>,
) -> ApiResult<Response> {
    let listing = crate::app::fleet::host_listing(
        query.customer.as_deref(),
        query.liveness.as_deref(),
        query.sort.as_deref(),
        query.after.as_deref(),
        listing_limit(query.limit)?,
    )?;
    let page = crate::app::fleet::hosts_page(&state, &listing).await?;
    Ok(page_response(page.hosts, page.next_after))
}

pub async fn show(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<String>,
) -> ApiResult<Json<HostInfo>> {
    Ok(Json(crate::app::fleet::host(&state, &host_id).await?))
}

/// The agent fetches this only when the envelope's generation passed its own.
pub async fn desired_state(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<String>,
) -> ApiResult<Json<DesiredStateResponse>> {
    let host = find_host(&state, &host_id).await?;
    Ok(Json(DesiredStateResponse {
        generation: host.desired_generation as u64,
        desired_state: desired_of(&host)?,
    }))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestsQuery {
    pub host: Option<String>,
    pub customer: Option<String>,
}

pub async fn guests(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<GuestsQuery>,
) -> ApiResult<Json<Vec<GuestInfo>>> {
    Ok(Json(
        crate::app::fleet::guests(&state, query.host.as_deref(), query.customer.as_deref()).await?,
    ))
}
