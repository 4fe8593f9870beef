//! The fleet as an operator reads it, for the API (`/api/v1/customers`, `/hosts…`, `/ops`,
//! `/events`) and the dashboard's customers, hosts and operations pages alike: the listings
//! with each host's liveness and convergence (filtered by liveness, or the longest silent
//! first), customers with what needs attention at each, one host with what surrounds it,
//! signed ops and events.
//!
//! Every flow here makes a fixed number of store queries, never one per row: a listing is one
//! query (a page of customers with what needs attention at each, two), and one host's page is
//! six (host, customer, guests, reports, events, ops), each bounded by a limit except the
//! host's guests (a host carries a handful).

use crate::error::{ApiError, ApiResult};
use crate::handlers::fleet::{
    customer_to_api, event_to_api, find_host, guest_to_api, host_to_api, op_to_api,
};
use crate::state::AppState;
use mftplus_store::{
    liveness, CustomerCounts, EventFilter, HostCursor, HostListing, HostOrder, HostReportRow,
    HostRow, OpFilter,
};
use mftplus_types::fleet::{
    CustomerInfo, EventInfo, GuestInfo, HostInfo, OpInfo, OpStatus, StorageTarget,
};
use std::collections::HashMap;

/// The most rows any listing answers with.
pub const MAX_LIMIT: u32 = 1000;

/// One page of a hosts listing ([`hosts_page`]).
#[derive(Debug, Clone)]
pub struct HostPage {
    pub hosts: Vec<HostInfo>,
    /// The cursor of the next page (`after`), when there is one.
    pub next_after: Option<String>,
}

/// The liveness filter's words, as `HostInfo::liveness` shows them.
pub const LIVENESS: [&str; 4] = [
    liveness::OK,
    liveness::STALE,
    liveness::DOWN,
    liveness::NEVER,
];

/// The hosts listing's orders: by id, or the longest silent first (never reported, then the
/// oldest report: the "missing hosts" view).
pub const HOST_SORTS: [(&str, HostOrder); 2] = [
    ("id", HostOrder::Id),
    ("last_report", HostOrder::LastReport),
];

/// A hosts listing from its wire form (the API's query and the hosts page's), `limit` clamped
/// to 1–[`MAX_LIMIT`]; 400 for an unknown liveness or order, or a cursor that no page of this
/// order handed out. Blank words are absent ones.
pub fn host_listing(
    customer: Option<&str>,
    liveness: Option<&str>,
    sort: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> ApiResult<HostListing> {
    let liveness = blank(liveness);
    if let Some(unknown) = liveness.filter(|word| !LIVENESS.contains(word)) {
        return Err(ApiError::validation(format!(
            "unknown liveness {unknown:?}: use {}",
            LIVENESS.join(", ")
        )));
    }
    let order = match blank(sort) {
        None => HostOrder::Id,
        Some(word) => HOST_SORTS
            .iter()
            .find(|(name, _)| *name == word)
            .map(|(_, order)| *order)
            .ok_or_else(|| ApiError::validation("sort must be id or last_report"))?,
    };
    Ok(HostListing {
        customer_id: blank(customer).map(str::to_string),
        liveness: liveness.map(str::to_string),
        order,
        after: blank(after)
            .map(|text| parse_cursor(order, text))
            .transpose()?,
        limit: limit.clamp(1, MAX_LIMIT),
    })
}

/// `text` without its surrounding blanks, or `None` when nothing is left.
fn blank(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

/// The cursor after `host` as the wire carries it: its id in id order; in last-report order
/// `<last_report_at_ms>.<id>`, or `never.<id>`, one opaque string either way.
pub fn host_cursor(order: HostOrder, host: &HostRow) -> String {
    match (order, host.last_report_at_ms) {
        (HostOrder::Id, _) => host.id.clone(),
        (HostOrder::LastReport, Some(at_ms)) => format!("{at_ms}.{}", host.id),
        (HostOrder::LastReport, None) => format!("never.{}", host.id),
    }
}

fn parse_cursor(order: HostOrder, text: &str) -> ApiResult<HostCursor> {
    let bad = || ApiError::validation("after must be the cursor a previous page handed out");
    if order == HostOrder::Id {
        return Ok(HostCursor {
            id: text.to_string(),
            last_report_at_ms: None,
        });
    }
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    let last_report_at_ms = match at {
        "never" => None,
        at => Some(
            at.parse::<i64>()
                .ok()
                .filter(|at| *at >= 0)
                .ok_or_else(bad)?,
        ),
    };
    if id.is_empty() {
        return Err(bad());
    }
    Ok(HostCursor {
        id: id.to_string(),
        last_report_at_ms,
    })
}

/// A page of hosts after the listing's cursor, in its order: one keyset query for one row
/// more than the page, which says whether another page follows.
pub async fn hosts_page(state: &AppState, listing: &HostListing) -> ApiResult<HostPage> {
    let limit = listing.limit.clamp(1, MAX_LIMIT);
    let asked = HostListing {
        limit: limit + 1,
        ..listing.clone()
    };
    let mut rows = state.store.list_hosts_page(&asked).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_after = match more {
        true => rows.last().map(|row| host_cursor(listing.order, row)),
        false => None,
    };
    let hosts = rows.iter().map(|row| host_to_api(state, row)).collect();
    Ok(HostPage { hosts, next_after })
}

/// One page of customers by id ([`customers_page`]).
#[derive(Debug, Clone)]
pub struct CustomerPage {
    pub customers: Vec<CustomerInfo>,
    /// The cursor of the next page (the last customer's id), when there is one.
    pub next_after: Option<String>,
}

/// At most `limit` (clamped to 1–[`MAX_LIMIT`]) customers whose id sorts after `after`,
/// bytewise: one keyset query for one row more than the page.
pub async fn customers_page(
    state: &AppState,
    after: Option<&str>,
    limit: u32,
) -> ApiResult<CustomerPage> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let after = after.map(str::trim).filter(|after| !after.is_empty());
    let mut rows = state.store.list_customers_page(after, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let customers: Vec<CustomerInfo> = rows.iter().map(customer_to_api).collect();
    let next_after = match more {
        true => customers.last().map(|customer| customer.id.clone()),
        false => None,
    };
    Ok(CustomerPage {
        customers,
        next_after,
    })
}

/// What needs attention at each of `customers` (hosts down, stale, never reported, ops
/// awaiting a signature), by customer id: one store query for the whole page.
pub async fn customer_counts(
    state: &AppState,
    customers: &[CustomerInfo],
) -> ApiResult<HashMap<String, CustomerCounts>> {
    let ids: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
    let counts = state.store.customer_fleet_counts(&ids).await?;
    Ok(counts
        .into_iter()
        .map(|counts| (counts.customer_id.clone(), counts))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_reads_its_wire_form() {
        let plain = host_listing(None, Some(" "), None, Some(""), 0).unwrap();
        assert_eq!(
            plain,
            HostListing {
                limit: 1,
                ..HostListing::default()
            }
        );
        let missing = host_listing(
            Some("c-1"),
            Some("down"),
            Some("last_report"),
            Some("1700000000000.h-a.b"),
            5000,
        )
        .unwrap();
        assert_eq!(missing.order, HostOrder::LastReport);
        assert_eq!(missing.limit, MAX_LIMIT);
        assert_eq!(
            missing.after,
            Some(HostCursor {
                id: "h-a.b".into(),
                last_report_at_ms: Some(1_700_000_000_000),
            })
        );
        let never = host_listing(None, None, Some("last_report"), Some("never.h-1"), 10).unwrap();
        assert_eq!(never.after.unwrap().last_report_at_ms, None);
        // In id order the cursor is the id itself, dots and all.
        let by_id = host_listing(None, None, Some("id"), Some("h-1.x"), 10).unwrap();
        assert_eq!(by_id.after.unwrap().id, "h-1.x");
        for (liveness, sort, after) in [
            (Some("asleep"), None, None),
            (None, Some("name"), None),
            (None, Some("last_report"), Some("h-1")),
            (None, Some("last_report"), Some("soon.h-1")),
            (None, Some("last_report"), Some("-5.h-1")),
            (None, Some("last_report"), Some("5.")),
        ] {
            assert!(
                host_listing(None, liveness, sort, after, 10).is_err(),
                "{liveness:?} {sort:?} {after:?}"
            );
        }
    }

    #[test]
    fn a_cursor_reads_back() {
        let mut row = HostRow {
            id: "h-1".into(),
            customer_id: "c".into(),
            key_hash: String::new(),
            hostname: String::new(),
            platform: None,
            agent_version: String::new(),
            controller_version: None,
            applied_generation: 0,
            last_report_at_ms: None,
            last_backups_json: String::new(),
            pending_signature_json: String::new(),
            poll_interval_seconds: None,
            desired_json: String::new(),
            desired_generation: 0,
            desired_updated_at_ms: 0,
            recovery_mode_until_ms: None,
            backup_namespace: None,
            repository_fingerprint: None,
            escrow: None,
            escrow_at_ms: None,
            liveness: "ok".into(),
            backup_missed_json: String::new(),
            enrolled_at_ms: 0,
        };
        assert_eq!(host_cursor(HostOrder::Id, &row), "h-1");
        assert_eq!(host_cursor(HostOrder::LastReport, &row), "never.h-1");
        row.last_report_at_ms = Some(42);
        let text = host_cursor(HostOrder::LastReport, &row);
        assert_eq!(text, "42.h-1");
        let listing = host_listing(None, None, Some("last_report"), Some(&text), 1).unwrap();
        assert_eq!(
            listing.after,
            Some(HostCursor {
                id: "h-1".into(),
                last_report_at_ms: Some(42),
            })
        );
    }
}
