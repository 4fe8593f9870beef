//! Customers (issue 15: "Customers → host + guests", "which hosts are down"): every customer
//! with its status and what needs attention there — hosts down, stale or never reported, ops
//! awaiting a signature — each count a link to the hosts or operations it counts. The
//! customer's actions (block, a new retrieval password) are on its hosts' pages
//! (`customer_actions.rs`).
//!
//! Bounded work: a page is two store queries whatever it holds, a keyset page of customers by
//! id (`app::fleet::customers_page`) and one aggregate of their hosts and ops
//! (`app::fleet::customer_counts`), never one query per row. The live stream reads the same
//! two for the page the browser shows.

use super::hosts::{count, non_empty, query_string, title_case};
use crate::app::fleet::{customer_counts, customers_page, CustomerPage};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::web::layout::{page, Nav};
use crate::web::WebResult;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use mftplus_store::CustomerCounts;
use mftplus_types::fleet::CustomerInfo;
use serde::Deserialize;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Customers per page, and the most a `limit` may ask for.
pub const PAGE: u32 = 100;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// `table`: only the live region, for `assets/app.js`.
    pub fragment: String,
    /// The cursor: customers whose id sorts after this one.
    pub after: String,
    /// Customers per page, clamped to 1–[`PAGE`].
    pub limit: String,
}

impl View {
    /// The page's length; 400 when `limit` is not a number.
    pub fn limit(&self) -> ApiResult<u32> {
        match non_empty(&self.limit) {
            None => Ok(PAGE),
            Some(text) => text
                .parse::<u32>()
                .map(|limit| limit.clamp(1, PAGE))
                .map_err(|_| ApiError::validation(format!("limit must be a number (1–{PAGE})"))),
        }
    }

    /// This view's query string from the cursor `after` (without the fragment), `?…` or empty.
    fn query_after(&self, after: &str) -> String {
        query_string(&[("after", after), ("limit", &self.limit)])
    }
}

/// A page of customers with their counts: what the page and its live stream read.
#[derive(Debug, Clone)]
pub struct Shown {
    page: CustomerPage,
    counts: HashMap<String, CustomerCounts>,
}

impl Shown {
    /// Two store queries: the customers after `after`, and their counts.
    pub async fn read(state: &AppState, after: &str, limit: u32) -> ApiResult<Shown> {
        let page = customers_page(state, non_empty(after), limit).await?;
        let counts = customer_counts(state, &page.customers).await?;
        Ok(Shown { page, counts })
    }

    /// Changes when anything the page shows does.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        for customer in &self.page.customers {
            (&customer.id, &customer.name, &customer.status).hash(&mut hasher);
            let counts = self.counts.get(&customer.id).cloned().unwrap_or_default();
            (
                counts.hosts,
                counts.down,
                counts.stale,
                counts.never,
                counts.awaiting_signature,
            )
                .hash(&mut hasher);
        }
        self.page.next_after.hash(&mut hasher);
        hasher.finish()
    }
}

/// `GET /customers`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    Query(view): Query<View>,
) -> WebResult {
    let shown = Shown::read(&state, &view.after, view.limit()?).await?;
    let region = customers_region(&view, &shown);
    if view.fragment == "table" {
        return Ok(Html(region.into_string()).into_response());
    }
    let query = view.query_after(&view.after);
    let fragment = match query.is_empty() {
        true => "/customers?fragment=table".to_string(),
        false => format!("/customers{query}&fragment=table"),
    };
    let body = html! {
        p.muted { "What needs attention at each customer. Each count opens the hosts or "
            "operations it counts; " a href="/hosts?sort=last_report" { "every host, longest silent first" } "." }
        div #customers-live data-live={"/live/customers" (query)} data-fragment=(fragment) {
            (region)
        }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Customers", Some((&caller, nav)), body).into_string()).into_response())
}

/// What the live region shows: a page of customers, or what to do when there are none.
fn customers_region(view: &View, shown: &Shown) -> Markup {
    let customers = &shown.page.customers;
    if customers.is_empty() {
        return no_customers(view);
    }
    html! {
        table #customers {
            caption.muted {
                (count(customers.len(), "customer"))
                @if !view.after.is_empty() { " after " code { (view.after) } }
            }
            thead { tr {
                th scope="col" aria-sort="ascending" { "Customer" }
                th scope="col" { "Status" }
                th scope="col" { "Hosts" }
                th scope="col" { "Down" }
                th scope="col" { "Stale" }
                th scope="col" { "Never reported" }
                th scope="col" { "Awaiting signature" }
                th scope="col" { "Operations" }
            } }
            tbody {
                @for customer in customers {
                    (row(customer, shown.counts.get(&customer.id).cloned().unwrap_or_default()))
                }
            }
        }
        @if let Some(after) = &shown.page.next_after {
            p.pager {
                a rel="next" href={"/customers" (view.query_after(after))} { "Next" }
            }
        }
    }
}

fn row(customer: &CustomerInfo, counts: CustomerCounts) -> Markup {
    let id = customer.id.as_str();
    let hosts = |liveness: &str| {
        format!(
            "/hosts{}",
            query_string(&[("customer", id), ("liveness", liveness)])
        )
    };
    let awaiting = format!(
        "/ops{}",
        query_string(&[("status", "pending_signature"), ("customer", id)])
    );
    html! {
        tr data-customer=(id) {
            th scope="row" { (customer.name) br; span.muted { (id) } }
            td { (status(&customer.status)) }
            td data-count="hosts" { a href=(hosts("")) { (count(counts.hosts as usize, "host")) } }
            td data-count="down" { (attention(counts.down, &hosts("down"), "down")) }
            td data-count="stale" { (attention(counts.stale, &hosts("stale"), "stale")) }
            td data-count="never" { (attention(counts.never, &hosts("never"), "never reported")) }
            td data-count="awaiting" { (attention(counts.awaiting_signature, &awaiting, "awaiting a signature")) }
            td { a href={"/ops" (query_string(&[("customer", id)]))} { "Operations" } }
        }
    }
}

/// A count that needs attention: a link to what it counts with the count in words (not by
/// colour alone), or a quiet zero.
fn attention(n: u64, href: &str, what: &str) -> Markup {
    html! {
        @if n == 0 {
            span.muted { "0" }
        } @else {
            a.warning href=(href) { strong { (n) } " " (what) }
        }
    }
}

/// `active` or `blocked`, in words; `data-status` carries the raw value.
fn status(status: &str) -> Markup {
    let class = match status {
        "active" => "ok",
        _ => "down",
    };
    html! { span class={"status " (class)} data-status=(status) { (title_case(status)) } }
}

/// The empty state: how a customer is made.
fn no_customers(view: &View) -> Markup {
    html! {
        div.empty #no-customers {
            @if !view.after.is_empty() {
                p { "No more customers. " a href={"/customers" (view.query_after(""))} { "Back to the first page" } }
            } @else {
                p { "No customer yet. On your workstation:" }
                code.secret { "mftctl customers create --name NAME --email EMAIL" }
                p.muted {
                    "It prints the retrieval password the customer's boxes enroll with, once; "
                    "then " code { "mftplus agent enroll" } " on a box adds its host here."
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_clamped_and_must_be_a_number() {
        let view = |limit: &str| View {
            limit: limit.into(),
            ..View::default()
        };
        assert_eq!(view("").limit().unwrap(), PAGE);
        assert_eq!(view("0").limit().unwrap(), 1);
        assert_eq!(view("5").limit().unwrap(), 5);
        assert_eq!(view("100000").limit().unwrap(), PAGE);
        assert!(view("ten").limit().is_err());
        assert_eq!(view("2").query_after("c-b"), "?after=c-b&limit=2");
    }
}
