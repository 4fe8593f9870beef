//! Hosts (issue 15: "Customers → host + guests"): the fleet's hosts with liveness, last report
//! and convergence, a page per host with its guests, storage and backups, recent reports,
//! events and open operations. Its writes are elsewhere: the desired-state editor in
//! `desired.rs`, the customer and recovery actions in `customer_actions.rs`.
//!
//! The listing narrows by customer and by liveness (`?liveness=down`: which hosts are down)
//! and orders by id or by last report (`?sort=last_report`: the "missing hosts" view, never
//! reported first, then the longest silent), both in the store's query.
//!
//! Bounded work: the listing is one store query (`app::fleet::hosts_page`, cut to [`PAGE`]
//! rows behind a keyset cursor in the listing's order) and a host's page a fixed six
//! (`app::fleet::host_detail`), never one query per row shown.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::WebResult;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use mftplus_store::HostListing;
use mftplus_types::fleet::{HostInfo, StorageTarget};
use serde::Deserialize;

/// Hosts per page of the listing, and the most a `limit` may ask for.
pub const PAGE: u32 = 100;

/// The liveness filter's choices, in the order the links show them.
const LIVENESS_CHOICES: [(&str, &str); 5] = [
    ("", "All"),
    ("down", "Down"),
    ("stale", "Stale"),
    ("never", "Never reported"),
    ("ok", "OK"),
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// `table`: only the live region, for `assets/app.js`.
    pub fragment: String,
    /// Only this customer's hosts.
    pub customer: String,
    /// Only hosts in this liveness (`ok`, `stale`, `down`, `never`); empty: every host.
    pub liveness: String,
    /// `id` (the default) or `last_report` (never reported first, then the oldest report).
    pub sort: String,
    /// The cursor: the previous page's last host, in this view's order.
    pub after: String,
    /// Hosts per page, clamped to 1–[`PAGE`].
    pub limit: String,
}

impl View {
    pub fn customer(&self) -> Option<&str> {
        non_empty(&self.customer)
    }

    /// Which hosts this view lists; 400 for an unknown liveness or order, a limit that is not
    /// a number, or a cursor no page of this order handed out.
    pub fn listing(&self) -> ApiResult<HostListing> {
        let limit = match non_empty(&self.limit) {
            None => PAGE,
            Some(text) => text
                .parse::<u32>()
                .map_err(|_| ApiError::validation(format!("limit must be a number (1–{PAGE})")))?
                .clamp(1, PAGE),
        };
        crate::app::fleet::host_listing(
            Some(&self.customer),
            Some(&self.liveness),
            Some(&self.sort),
            Some(&self.after),
            limit,
        )
    }

    fn by_last_report(&self) -> bool {
        self.sort.trim() == "last_report"
    }

    /// This view's query string (without the fragment), `?…` or empty.
    fn query(&self) -> String {
        self.query_after(&self.after)
    }

    /// The same view from another cursor.
    fn query_after(&self, after: &str) -> String {
        query_string(&[
            ("customer", &self.customer),
            ("liveness", &self.liveness),
            ("sort", &self.sort),
            ("after", after),
            ("limit", &self.limit),
        ])
    }

    /// The first page of this view with another liveness filter and order.
    fn link(&self, liveness: &str, sort: &str) -> String {
        let query = query_string(&[
            ("customer", &self.customer),
            ("liveness", liveness),
            ("sort", sort),
            ("limit", &self.limit),
        ]);
        format!("/hosts{query}")
    }
}

/// `GET /hosts`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    Query(view): Query<View>,
) -> WebResult {
    let listing = crate::app::fleet::hosts_page(&state, &view.listing()?).await?;
    let region = hosts_region(&state, &view, &listing);
    if view.fragment == "table" {
        return Ok(Html(region.into_string()).into_response());
    }
    let query = view.query();
    let fragment = match query.is_empty() {
        true => "/hosts?fragment=table".to_string(),
        false => format!("/hosts{query}&fragment=table"),
    };
    let body = html! {
        (filters(&view))
        div #hosts-live data-live={"/live/hosts" (query)} data-fragment=(fragment) {
            (region)
        }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Hosts", Some((&caller, nav)), body).into_string()).into_response())
}

/// Links to each liveness filter (the current one marked) and to the "missing hosts" order;
/// the customer narrowed to.
fn filters(view: &View) -> Markup {
    let current = view.liveness.trim();
    html! {
        nav.filters aria-label="Liveness" {
            @for (liveness, text) in LIVENESS_CHOICES {
                @if liveness == current {
                    a href=(view.link(liveness, &view.sort)) aria-current="page" { strong { (text) } }
                } @else {
                    a href=(view.link(liveness, &view.sort)) { (text) }
                }
            }
            @if view.by_last_report() {
                a href=(view.link(current, "")) { "By host id" }
            } @else {
                a href=(view.link(current, "last_report")) { "Longest silent first" }
            }
        }
        @if let Some(customer) = view.customer() {
            p #filter { "Customer " code { (customer) } " · "
                a href={"/hosts" (query_string(&[("liveness", &view.liveness), ("sort", &view.sort)]))} { "All customers" } }
        }
    }
}

/// What the live region shows: a page of hosts, or what to do when there are none.
fn hosts_region(state: &AppState, view: &View, listing: &crate::app::fleet::HostPage) -> Markup {
    let now_ms = state.clock.now_ms();
    if listing.hosts.is_empty() {
        return no_hosts(view);
    }
    let by_report = view.by_last_report();
    html! {
        table #hosts {
            caption.muted {
                (count(listing.hosts.len(), "host"))
                @if let Some(liveness) = non_empty(&view.liveness) { ", " (liveness_words(liveness)) }
                @if by_report { ", longest silent first" }
                @if !view.after.is_empty() { " after " code { (view.after) } }
            }
            thead { tr {
                th scope="col" aria-sort=[(!by_report).then_some("ascending")] { "Host" }
                th scope="col" { "Customer" }
                th scope="col" { "Liveness" }
                th scope="col" aria-sort=[by_report.then_some("ascending")] {
                    @if by_report {
                        a href=(view.link(&view.liveness, "")) title="Sort by host id" { "Last report ▲" }
                    } @else {
                        a href=(view.link(&view.liveness, "last_report")) title="Sort by last report, longest silent first" { "Last report" }
                    }
                }
                th scope="col" { "Convergence" } th scope="col" { "Agent" }
            } }
            tbody {
                @for host in &listing.hosts {
                    tr data-host=(host.host_id) {
                        td { a href={"/hosts/" (host.host_id)} { (host.hostname) } br; span.muted { (host.host_id) } }
                        td { a href={"/hosts" (query_string(&[("customer", &host.customer_id)]))} { (host.customer_id) } }
                        td { (liveness(&host.liveness)) }
                        td { (when_or(host.last_report_at.as_deref(), now_ms, "never")) }
                        td { (convergence(host)) }
                        td { (host.agent_version) }
                    }
                }
            }
        }
        @if let Some(after) = &listing.next_after {
            p.pager {
                a rel="next" href={"/hosts" (view.query_after(after))} { "Next" }
            }
        }
    }
}

/// "down", "never reported"…: a liveness filter in words.
fn liveness_words(liveness: &str) -> String {
    match liveness {
        "never" => "never reported".to_string(),
        other => other.to_lowercase(),
    }
}

/// The empty state: how a box joins the fleet, or that no host matches the filter.
fn no_hosts(view: &View) -> Markup {
    let customer = view.customer().unwrap_or("CUSTOMER_ID");
    html! {
        div.empty #no-hosts {
            @if !view.after.is_empty() {
                p { "No more hosts. " a href=(view.link(&view.liveness, &view.sort)) { "Back to the first page" } }
            } @else if let Some(liveness) = non_empty(&view.liveness) {
                p { "No host is " (liveness_words(liveness))
                    @if let Some(customer) = view.customer() { " for customer " code { (customer) } }
                    ". " a href=(view.link("", &view.sort)) { "All hosts" } }
            } @else {
                p { "No host has enrolled yet"
                    @if let Some(customer) = view.customer() { " for customer " code { (customer) } }
                    ". On the box, as root:" }
                code.secret { "mftplus agent enroll --server CLOUD_URL --customer " (customer) }
                p.muted {
                    "It asks for the customer's retrieval password (printed once by "
                    code { "mftctl customers create" } "), then "
                    code { "mftplus agent" } " reports and the host appears here."
                }
            }
        }
    }
}

/// `GET /hosts/{host_id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(host_id): ApiPath<String>,
) -> WebResult {
    let limits = crate::app::fleet::DetailLimits {
        reports: 10,
        events: 20,
        ops: 20,
    };
    let detail = crate::app::fleet::host_detail(&state, &host_id, limits).await?;
    let now_ms = state.clock.now_ms();
    let may_edit = super::desired::may_edit(&state, &caller);
    let body = html! {
        (summary(&detail, now_ms))
        (super::desired::host_link(&detail.host, may_edit))
        (resources(&detail))
        (super::ops::open_for_host(&detail.host, &detail.open_ops, now_ms))
        (guests(&detail.guests, now_ms))
        (storage(&detail.storage_targets, &detail.backup_missed, now_ms))
        (reports(&detail.reports, now_ms))
        (events(&detail.events, now_ms))
        (super::customer_actions::section(&state, &caller, &detail.host, detail.customer.as_ref()))
    };
    let title = format!("Host {}", detail.host.hostname);
    let nav = Nav::of(&state, &caller);
    Ok(Html(page(&title, Some((&caller, nav)), body).into_string()).into_response())
}

fn summary(detail: &crate::app::fleet::HostDetail, now_ms: i64) -> Markup {
    let host = &detail.host;
    html! {
        dl.facts #host-summary {
            dt { "Host" } dd { code { (host.host_id) } }
            dt { "Customer" } dd {
                a href={"/hosts" (query_string(&[("customer", &host.customer_id)]))} {
                    @if let Some(customer) = &detail.customer { (customer.name) " " }
                    span.muted { (host.customer_id) }
                }
            }
            dt { "Liveness" } dd { (liveness(&host.liveness)) }
            dt { "Last report" } dd { (when_or(host.last_report_at.as_deref(), now_ms, "never")) }
            dt { "Convergence" } dd { (convergence(host)) }
            dt { "Agent" } dd { (host.agent_version)
                @if let Some(platform) = &host.platform { span.muted { " on " (platform) } } }
            @if let Some(version) = &host.controller_version { dt { "Controller" } dd { (version) } }
            dt { "Enrolled" } dd { (when(&host.enrolled_at, now_ms)) }
            @if let Some(until) = &host.recovery_mode_until {
                dt { "Recovery mode" } dd.warning { "armed until " (when(until, now_ms)) }
            }
            @if let Some(namespace) = &host.backup_namespace { dt { "Backup namespace" } dd { code { (namespace) } } }
            dt { "Backup key escrow" } dd { (when_or(host.escrow_at.as_deref(), now_ms, "none yet")) }
        }
    }
}

/// CPU, memory and disk as of the latest report.
fn resources(detail: &crate::app::fleet::HostDetail) -> Markup {
    html! {
        h2 { "Resources" }
        @if let Some(latest) = detail.reports.first() {
            dl.facts #resources {
                dt { "CPU" } dd { (format!("{:.0} %", latest.cpu_percent)) }
                dt { "Memory" } dd { (usage(latest.memory_used_bytes, latest.memory_total_bytes)) }
                dt { "Disk" } dd { (usage(latest.disk_used_bytes, latest.disk_total_bytes)) }
                dt { "Guests running" } dd { (latest.guests_running) " of " (latest.guests_total) }
            }
        } @else {
            p.empty { "No report yet: " code { "mftplus agent" } " reports once it runs on the box." }
        }
    }
}

fn guests(guests: &[mftplus_types::fleet::GuestInfo], now_ms: i64) -> Markup {
    html! {
        h2 { "Guests" }
        @if guests.is_empty() {
            p.empty { "No guest yet. Add one to the host's desired state ("
                code { "mftctl desired set HOST_ID FILE" } "); the agent creates it and mints its key." }
        } @else {
            table #guests {
                thead { tr { th { "Guest" } th { "Status" } th { "Controller" } th { "Seen by the host" } th { "Last own report" } } }
                tbody {
                    @for guest in guests {
                        tr data-guest=(guest.guest_id) {
                            td { (guest.display_name) br; span.muted { (guest.guest_id) } }
                            td { (badge(&guest.status, title_case(&guest.status))) }
                            td { (guest.controller_version.as_deref().unwrap_or("—")) }
                            td { (when_or(guest.last_seen_at.as_deref(), now_ms, "never")) }
                            td { (when_or(guest.last_report_at.as_deref(), now_ms, "never")) }
                        }
                    }
                }
            }
        }
    }
}

fn storage(targets: &[StorageTarget], missed: &[String], now_ms: i64) -> Markup {
    html! {
        h2 { "Storage and backups" }
        @if targets.is_empty() {
            p.empty { "The latest report lists no storage target." }
        } @else {
            table #storage {
                thead { tr { th { "Target" } th { "State" } th { "Used" } th { "Last backup" } th { "Last restore test" } } }
                tbody {
                    @for target in targets {
                        tr data-target=(target.durable_id) {
                            td { (target.label.as_deref().unwrap_or("—")) br; code.muted { (target.durable_id) } }
                            td { (target_state(target)) }
                            td { @match (target.used_bytes, target.size_bytes) {
                                (Some(used), Some(size)) => (usage(clamp(used), clamp(size))),
                                (None, Some(size)) => { "of " (bytes(clamp(size))) },
                                _ => "—",
                            } }
                            td {
                                (run(target.last_backup.as_ref(), now_ms))
                                @if missed.contains(&target.durable_id) { br; span.warning { "Backup overdue" } }
                            }
                            td { (run(target.last_restore_test.as_ref(), now_ms)) }
                        }
                    }
                }
            }
        }
    }
}

fn target_state(target: &StorageTarget) -> Markup {
    html! {
        @if !target.attached { (badge("detached", "Detached")) }
        @else if !target.reachable { (badge("down", "Unreachable")) }
        @else { (badge("ok", "Attached")) }
        @if target.data_bearing { " " span.muted { "data" } }
    }
}

fn run(run: Option<&mftplus_types::fleet::BackupRun>, now_ms: i64) -> Markup {
    let Some(run) = run else {
        return html! { span.muted { "never" } };
    };
    let (class, text) = match run.status {
        mftplus_types::fleet::RunOutcome::Ok => ("ok", "OK"),
        mftplus_types::fleet::RunOutcome::Failed => ("down", "Failed"),
    };
    html! {
        (badge(class, text)) " " (when(&run.at, now_ms))
        @if let Some(detail) = &run.detail { br; span.muted { (detail) } }
    }
}

fn reports(reports: &[mftplus_store::HostReportRow], now_ms: i64) -> Markup {
    html! {
        h2 { "Recent reports" }
        @if reports.is_empty() {
            p.empty { "No report yet." }
        } @else {
            table #reports {
                caption.muted { "The newest " (reports.len()) }
                thead { tr { th { "Received" } th { "Generation" } th { "CPU" } th { "Memory" } th { "Disk" } th { "Guests" } } }
                tbody {
                    @for report in reports {
                        tr {
                            td { (when(&crate::clock::rfc3339(report.received_at_ms), now_ms)) }
                            td { (report.applied_generation) }
                            td { (format!("{:.0} %", report.cpu_percent)) }
                            td { (usage(report.memory_used_bytes, report.memory_total_bytes)) }
                            td { (usage(report.disk_used_bytes, report.disk_total_bytes)) }
                            td { (report.guests_running) " / " (report.guests_total) }
                        }
                    }
                }
            }
        }
    }
}

fn events(events: &[mftplus_types::fleet::EventInfo], now_ms: i64) -> Markup {
    html! {
        h2 { "Recent events" }
        @if events.is_empty() {
            p.empty { "No event about this host yet." }
        } @else {
            table #events {
                thead { tr { th { "When" } th { "Event" } th { "Severity" } th { "Details" } } }
                tbody {
                    @for event in events {
                        tr data-event=(event.id) {
                            td { (when(&event.at, now_ms)) }
                            td { code { (event.kind) }
                                @if let Some(guest) = &event.guest_id { br; span.muted { "guest " (guest) } }
                                @if let Some(op) = &event.op_id { br; span.muted { "op " (op) } } }
                            td { (badge(&event.severity, title_case(&event.severity))) }
                            td { code.details { (shorten(&event.details.to_string(), 200)) } }
                        }
                    }
                }
            }
        }
    }
}

/// Liveness as a badge: `ok`, `stale`, `down` or `never`.
pub(super) fn liveness(state: &str) -> Markup {
    let text = match state {
        "ok" => "OK".to_string(),
        "never" => "Never reported".to_string(),
        other => title_case(other),
    };
    badge(state, text)
}

/// Convergence with the generations it compares.
fn convergence(host: &HostInfo) -> Markup {
    html! {
        (badge(&host.convergence, title_case(&host.convergence)))
        br;
        span.muted title="applied / desired generation" {
            "applied " (host.applied_generation) " of " (host.desired_generation)
        }
        @if !host.pending_signature.is_empty() {
            br; span.warning { (host.pending_signature.len()) " waiting for a signature" }
        }
    }
}

/// A status word in a coloured pill; `data-status` carries the raw value.
pub(super) fn badge(class: &str, text: impl AsRef<str>) -> Markup {
    html! { span class={"status " (class)} data-status=(class) { (text.as_ref()) } }
}

pub(super) fn when_or(rfc3339: Option<&str>, now_ms: i64, otherwise: &str) -> Markup {
    match rfc3339 {
        Some(at) => when(at, now_ms),
        None => html! { span.muted { (otherwise) } },
    }
}

pub(super) fn title_case(word: &str) -> String {
    let word = word.replace('_', " ");
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "1 host", "2 hosts".
pub(super) fn count(n: usize, word: &str) -> String {
    match n {
        1 => format!("1 {word}"),
        _ => format!("{n} {word}s"),
    }
}

/// At most `max` characters, with an ellipsis when cut.
pub(super) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn usage(used: i64, total: i64) -> String {
    if total <= 0 {
        return bytes(used);
    }
    let percent = used as f64 * 100.0 / total as f64;
    format!("{} of {} ({percent:.0} %)", bytes(used), bytes(total))
}

fn bytes(count: i64) -> String {
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

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) fn non_empty(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

/// `?k=v&…` of the pairs whose value is not empty, percent-encoded; empty when none is.
pub(super) fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(key, value)| format!("{key}={}", encode(value.trim())))
        .collect();
    match parts.is_empty() {
        true => String::new(),
        false => format!("?{}", parts.join("&")),
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_links_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(usage(1024, 4096), "1.0 KiB of 4.0 KiB (25 %)");
        assert_eq!(
            query_string(&[("customer", "a b&c"), ("after", "")]),
            "?customer=a%20b%26c"
        );
        assert_eq!(query_string(&[("after", " ")]), "");
        assert_eq!(title_case("pending_signature"), "Pending signature");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(count(1, "host"), "1 host");
        assert_eq!(count(0, "host"), "0 hosts");
    }
}
