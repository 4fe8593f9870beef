//! Signed operations (issue 15: "Pending operations per customer and fleet-wide: awaiting
//! signature → signed → awaiting agent → executed/failed/expired/rejected, with the exact
//! `mftctl ops sign` line to copy"). The browser never holds a signing key: an op waiting for
//! a signature shows the command that signs it on the operator's workstation.
//!
//! Bounded work: one store query (`app::fleet::ops`) of at most [`LIMIT`] ops, newest first.
//! The store's op listing has a limit but no cursor, so there are no further pages yet: the
//! filters (status, customer, host) narrow what is shown.

use super::hosts::{badge, count, non_empty, query_string, shorten};
use crate::app::fleet::{OpsListing, OPEN};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::WebResult;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use mftplus_types::fleet::{HostInfo, OpInfo, OpStatus};
use serde::Deserialize;

/// The most ops the page shows.
pub const LIMIT: u32 = 100;

/// The key `mftctl ops sign` uses when given none; the line names it so it can be changed.
const SIGN_KEY: &str = "~/.ssh/id_ed25519";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// `table`: only the live region, for `assets/app.js`.
    pub fragment: String,
    /// Empty: ops not finished yet; `all`; or comma-separated statuses.
    pub status: String,
    pub customer: String,
    pub host: String,
}

impl View {
    /// The view's filters as a query string, `?…` or empty.
    fn query(&self) -> String {
        query_string(&[
            ("status", &self.status),
            ("customer", &self.customer),
            ("host", &self.host),
        ])
    }

    /// The same filters with another status.
    fn with_status(&self, status: &str) -> String {
        let query = query_string(&[
            ("status", status),
            ("customer", &self.customer),
            ("host", &self.host),
        ]);
        format!("/ops{query}")
    }
}

/// Which ops a view lists (400 for an unknown status).
pub fn listing(view: &View) -> ApiResult<OpsListing> {
    let statuses = match view.status.trim() {
        "" => OPEN.to_vec(),
        "all" => Vec::new(),
        some => crate::app::fleet::op_statuses(some)?,
    };
    Ok(OpsListing {
        statuses,
        host_id: non_empty(&view.host).map(str::to_string),
        customer_id: non_empty(&view.customer).map(str::to_string),
        limit: LIMIT,
    })
}

/// `GET /ops`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    Query(view): Query<View>,
) -> WebResult {
    let listing = listing(&view)?;
    let ops = crate::app::fleet::ops(&state, &listing).await?;
    let may_sign = state.rbac.allows(&caller.role, "ops:sign");
    let region = ops_region(&view, &ops, may_sign, state.clock.now_ms());
    if view.fragment == "table" {
        return Ok(Html(region.into_string()).into_response());
    }
    let query = view.query();
    let fragment = match query.is_empty() {
        true => "/ops?fragment=table".to_string(),
        false => format!("/ops{query}&fragment=table"),
    };
    let body = html! {
        (filters(&view))
        div #ops-live data-live={"/live/ops" (query)} data-fragment=(fragment) {
            (region)
        }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Operations", Some((&caller, nav)), body).into_string()).into_response())
}

/// Links to each status filter, the current one marked; and the customer or host narrowed to.
fn filters(view: &View) -> Markup {
    let current = view.status.trim();
    let choices = std::iter::once(("", "Not finished"))
        .chain(
            OpStatus::ALL
                .iter()
                .map(|s| (s.as_str(), label(s.as_str()))),
        )
        .chain(std::iter::once(("all", "All")));
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
        @if let Some(customer) = non_empty(&view.customer) {
            p { "Customer " code { (customer) } " · "
                a href={"/ops" (query_string(&[("status", &view.status), ("host", &view.host)]))} { "every customer" } }
        }
        @if let Some(host) = non_empty(&view.host) {
            p { "Host " a href={"/hosts/" (host)} { code { (host) } } " · "
                a href={"/ops" (query_string(&[("status", &view.status), ("customer", &view.customer)]))} { "every host" } }
        }
    }
}

/// What the live region shows: the ops, or what to do when there are none.
fn ops_region(view: &View, ops: &[OpInfo], may_sign: bool, now_ms: i64) -> Markup {
    if ops.is_empty() {
        return no_ops(view);
    }
    let waiting = ops
        .iter()
        .filter(|op| op.status == OpStatus::PendingSignature.as_str())
        .count();
    html! {
        @if waiting > 0 && may_sign {
            p #sign-all { (waiting) " waiting for a signature. Sign them all on your workstation with "
                code { "mftctl ops sign --pending" } ", or one by one below." }
        }
        table #ops {
            caption.muted {
                (count(ops.len(), "operation")) ", newest first"
                @if ops.len() as u32 >= LIMIT { " (the newest " (LIMIT) " only: narrow by status or customer)" }
            }
            thead { tr { th { "Operation" } th { "Target" } th { "Status" } th { "Created" } th { "Expires" } } }
            tbody {
                @for op in ops { (op_row(op, may_sign, now_ms)) }
            }
        }
    }
}

fn op_row(op: &OpInfo, may_sign: bool, now_ms: i64) -> Markup {
    html! {
        tr data-op=(op.op_id) data-status=(op.status) {
            td { code { (op.op_type) } br; span.muted { (op.op_id) } }
            td {
                a href={"/hosts/" (op.host_id)} { (op.host_id) }
                @if let Some(guest) = &op.guest_id { br; span.muted { "guest " (guest) } }
                br; a.muted href={"/ops" (query_string(&[("status", "all"), ("customer", &op.customer_id)]))} { (op.customer_id) }
            }
            td {
                (badge(&op.status, label(&op.status)))
                @if op.status == OpStatus::PendingSignature.as_str() {
                    @if may_sign { (sign_line(op)) } @else { br; span.muted { "An operator signs it with " code { "mftctl ops sign" } "." } }
                }
                (progress(op, now_ms))
            }
            td { (when(&op.issued_at, now_ms)) }
            td { (when(&op.expires_at, now_ms)) }
        }
    }
}

/// The exact command that signs this op on the operator's workstation, with a copy button.
fn sign_line(op: &OpInfo) -> Markup {
    let id = format!("sign-{}", op.op_id);
    html! {
        code.secret.command id=(id) { "mftctl ops sign " (op.op_id) " --key " (SIGN_KEY) }
        button.secondary type="button" data-copy=(id) hidden { "Copy" }
        span.muted { " Or " code { "--agent" } " for a key in ssh-agent." }
    }
}

/// When the op moved on, and the agent's result once it finished.
fn progress(op: &OpInfo, now_ms: i64) -> Markup {
    html! {
        @if let Some(at) = &op.signed_at { br; span.muted { "signed " (when(at, now_ms)) } }
        @if let Some(at) = &op.delivered_at { br; span.muted { "delivered " (when(at, now_ms)) } }
        @if let Some(at) = &op.finished_at { br; span.muted { "finished " (when(at, now_ms)) } }
        @if let Some(result) = &op.result { br; code.details { (shorten(&result.to_string(), 200)) } }
    }
}

fn no_ops(view: &View) -> Markup {
    html! {
        div.empty #no-ops {
            @match view.status.trim() {
                "" => {
                    p { "No operation is waiting. A destructive change to a host's desired state "
                        "(removing a guest, detaching or wiping storage…) waits here for a signature." }
                    p.muted { "Edit a host's desired state with " code { "mftctl desired set HOST_ID FILE" }
                        "; " code { "mftctl desired diff HOST_ID FILE" } " shows first which changes are destructive." }
                },
                "all" => p { "No operation yet." },
                other => p { "No operation is " (other.replace(',', " or ")) ". "
                    a href=(view.with_status("all")) { "See every operation" } "." },
            }
        }
    }
}

/// The open ops of one host, for its page.
pub(super) fn open_for_host(host: &HostInfo, ops: &[OpInfo], now_ms: i64) -> Markup {
    let all = format!(
        "/ops{}",
        query_string(&[("status", "all"), ("host", &host.host_id)])
    );
    html! {
        h2 { "Operations not finished" }
        @if ops.is_empty() {
            p.empty { "None. " a href=(all) { "Every operation of this host" } }
        } @else {
            table #host-ops {
                thead { tr { th { "Operation" } th { "Status" } th { "Expires" } } }
                tbody {
                    @for op in ops {
                        tr data-op=(op.op_id) {
                            td { code { (op.op_type) } br; span.muted { (op.op_id) }
                                @if let Some(guest) = &op.guest_id { br; span.muted { "guest " (guest) } } }
                            td { (badge(&op.status, label(&op.status))) }
                            td { (when(&op.expires_at, now_ms)) }
                        }
                    }
                }
            }
            p { a href={"/ops" (query_string(&[("host", &host.host_id)]))} { "Sign or follow them on the operations page" } }
        }
    }
}

/// The lifecycle in words: awaiting signature → signed → awaiting agent → executed…
pub fn label(status: &str) -> &'static str {
    match status {
        "pending_signature" => "Awaiting signature",
        "signed" => "Signed",
        "delivered" => "Awaiting agent",
        "executed" => "Executed",
        "failed" => "Failed",
        "expired" => "Expired",
        "rejected" => "Rejected",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_names_its_ops() {
        let open = listing(&View::default()).unwrap();
        assert_eq!(open.statuses, OPEN.to_vec());
        let all = listing(&View {
            status: "all".into(),
            ..View::default()
        })
        .unwrap();
        assert!(all.statuses.is_empty());
        let some = View {
            status: "failed,rejected".into(),
            customer: "kovacs".into(),
            ..View::default()
        };
        assert_eq!(
            listing(&some).unwrap().statuses,
            vec![OpStatus::Failed, OpStatus::Rejected]
        );
        assert_eq!(some.with_status("all"), "/ops?status=all&customer=kovacs");
        assert!(listing(&View {
            status: "done".into(),
            ..View::default()
        })
        .is_err());
        for status in OpStatus::ALL {
            assert_ne!(label(status.as_str()), "Unknown");
        }
    }
}
