//! The fleet as an operator reads it, for the API (`/api/v1/hosts…`, `/ops`, `/events`) and
//! the dashboard's hosts and operations pages alike: the listings with each host's liveness
//! and convergence, one host with what surrounds it, signed ops and events.
//!
//! Every flow here makes a fixed number of store queries, never one per row: a listing is one
//! query, and one host's page is six (host, customer, guests, reports, events, ops), each
//! bounded by a limit except the host's guests (a host carries a handful).

use crate::error::{ApiError, ApiResult};
use crate::handlers::fleet::{event_to_api, find_host, guest_to_api, host_to_api, op_to_api};
use crate::state::AppState;
use mftplus_store::{EventFilter, HostReportRow, OpFilter};
use mftplus_types::fleet::{
    CustomerInfo, EventInfo, GuestInfo, HostInfo, OpInfo, OpStatus, StorageTarget,
};

/// The most rows any listing answers with.
pub const MAX_LIMIT: u32 = 1000;

/// One page of [`hosts`]: at most `limit` hosts whose id sorts after `after`.
#[derive(Debug, Clone)]
pub struct HostPage {
    pub hosts: Vec<HostInfo>,
    /// The cursor of the next page, when there is one.
    pub next_after: Option<String>,
}

/// A page of hosts after the cursor `after` (a host id, compared bytewise), ordered by id:
/// one keyset query for one row more than the page, which says whether another page follows.
pub async fn hosts_page(
    state: &AppState,
    customer: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<HostPage> {
    let limit = limit.clamp(1, MAX_LIMIT as usize);
    let mut rows = state
        .store
        .list_hosts_page(customer, after, limit as u32 + 1)
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let hosts: Vec<HostInfo> = rows.iter().map(|row| host_to_api(state, row)).collect();
    let next_after = match more {
        true => hosts.last().map(|host| host.host_id.clone()),
        false => None,
    };
    Ok(HostPage { hosts, next_after })
}

/// One host, or 404.
pub async fn host(state: &AppState, host_id: &str) -> ApiResult<HostInfo> {
    Ok(host_to_api(state, &find_host(state, host_id).await?))
}

/// Guests, narrowed by host and/or customer, ordered by id.
pub async fn guests(
    state: &AppState,
    host: Option<&str>,
    customer: Option<&str>,
) -> ApiResult<Vec<GuestInfo>> {
    let rows = state.store.list_guests(host, customer).await?;
    Ok(rows.iter().map(guest_to_api).collect())
}

/// What the host page shows besides the host itself, each part bounded.
#[derive(Debug, Clone)]
pub struct HostDetail {
    pub host: HostInfo,
    pub customer: Option<CustomerInfo>,
    pub guests: Vec<GuestInfo>,
    /// The latest report's storage targets with their last backup and restore test.
    pub storage_targets: Vec<StorageTarget>,
    /// `durable_id`s whose backup is overdue, as the deadline check last found.
    pub backup_missed: Vec<String>,
    /// Newest first; the first is the host's current CPU, memory and disk.
    pub reports: Vec<HostReportRow>,
    /// Newest first.
    pub events: Vec<EventInfo>,
    /// Ops not yet finished (awaiting signature, signed, delivered), newest first.
    pub open_ops: Vec<OpInfo>,
}

/// How many of each the host page shows.
#[derive(Debug, Clone, Copy)]
pub struct DetailLimits {
    pub reports: u32,
    pub events: u32,
    pub ops: u32,
}

/// One host with its customer, guests, storage, recent reports, events and open ops: six
/// store queries whatever the host holds.
pub async fn host_detail(
    state: &AppState,
    host_id: &str,
    limits: DetailLimits,
) -> ApiResult<HostDetail> {
    let row = find_host(state, host_id).await?;
    let customer = state.store.get_customer(&row.customer_id).await?;
    let guests = guests(state, Some(&row.id), None).await?;
    let reports = state
        .store
        .list_host_reports(&row.id, limits.reports.clamp(1, MAX_LIMIT))
        .await?;
    let events = events(
        state,
        EventFilter {
            host_id: Some(row.id.clone()),
            limit: limits.events,
            ..EventFilter::default()
        },
    )
    .await?;
    let open_ops = ops(
        state,
        &OpsListing {
            statuses: OPEN.to_vec(),
            host_id: Some(row.id.clone()),
            customer_id: None,
            limit: limits.ops,
        },
    )
    .await?;
    Ok(HostDetail {
        host: host_to_api(state, &row),
        customer: customer
            .as_ref()
            .map(crate::handlers::fleet::customer_to_api),
        guests,
        storage_targets: serde_json::from_str(&row.last_backups_json).unwrap_or_default(),
        backup_missed: serde_json::from_str(&row.backup_missed_json).unwrap_or_default(),
        reports,
        events,
        open_ops,
    })
}

/// The statuses of an op that is not finished yet.
pub const OPEN: [OpStatus; 3] = [
    OpStatus::PendingSignature,
    OpStatus::Signed,
    OpStatus::Delivered,
];

/// Which ops to list.
#[derive(Debug, Clone, Default)]
pub struct OpsListing {
    /// Any of these; empty means every status.
    pub statuses: Vec<OpStatus>,
    pub host_id: Option<String>,
    pub customer_id: Option<String>,
    /// Clamped to 1–[`MAX_LIMIT`].
    pub limit: u32,
}

/// A comma-separated status filter (`?status=`), or the validation error naming the allowed
/// statuses.
pub fn op_statuses(text: &str) -> ApiResult<Vec<OpStatus>> {
    OpStatus::parse_list(text).map_err(|unknown| ApiError::validation(unknown.to_string()))
}

/// Signed ops, newest first.
pub async fn ops(state: &AppState, listing: &OpsListing) -> ApiResult<Vec<OpInfo>> {
    let rows = state
        .store
        .list_ops(&OpFilter {
            host_id: listing.host_id.clone(),
            customer_id: listing.customer_id.clone(),
            statuses: listing
                .statuses
                .iter()
                .map(|status| status.as_str().to_string())
                .collect(),
            limit: listing.limit.clamp(1, MAX_LIMIT),
        })
        .await?;
    Ok(rows.iter().map(op_to_api).collect())
}

/// Events, newest first (oldest first after `after_id`); the limit is clamped to
/// 1–[`MAX_LIMIT`].
pub async fn events(state: &AppState, mut filter: EventFilter) -> ApiResult<Vec<EventInfo>> {
    filter.limit = filter.limit.clamp(1, MAX_LIMIT);
    let rows = state.store.list_events(&filter).await?;
    Ok(rows.iter().map(event_to_api).collect())
}
