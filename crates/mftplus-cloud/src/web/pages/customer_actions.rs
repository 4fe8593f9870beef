//! What an operator does to a host's customer and to the host's recovery from the host page:
//! block and unblock the customer, reset its retrieval password (the new one shown once), arm
//! and disarm recovery mode. Each is a POST form with the session's CSRF token; the flows are
//! `app::customers` and `app::recovery`, the API's own, with the same audit records.
//!
//! The destructive ones (block, a new retrieval password, arming recovery) need a ticked
//! "I understand" box: the browser asks for it (`required`) and the server refuses without it,
//! since no script may ask (the Content-Security-Policy allows none inline).

use super::form;
use super::hosts::{badge, title_case};
use crate::app::{customers, recovery};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::middleware::ClientIp;
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::{see_other, session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::Form;
use maud::{html, Markup};
use mftplus_types::fleet::{CreatedCustomer, CustomerInfo, HostInfo};
use serde::Deserialize;

/// The permission the API's customer and recovery actions require.
const MANAGE: &str = "fleet:manage";

/// How long recovery may be armed from the page, in minutes (the API clamps to 1 min–4 h).
const TTL_CHOICES: [(u64, &str); 3] = [(15, "15 minutes"), (60, "1 hour"), (240, "4 hours")];
const DEFAULT_TTL_MINUTES: u64 = 60;

/// Any of the action forms; each reads the fields it needs.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Action {
    csrf: String,
    /// `yes` when the "I understand" box is ticked.
    confirm: String,
    ttl_minutes: String,
}

impl Action {
    /// The checked form: the CSRF token always, the confirmation when `confirmed` is asked.
    fn check(&self, caller: &Caller, confirmed: bool) -> ApiResult<()> {
        session::check_csrf(caller, &self.csrf)?;
        if confirmed && self.confirm != "yes" {
            return Err(ApiError::validation(
                "tick the box to confirm this action, then submit again",
            ));
        }
        Ok(())
    }

    fn ttl_seconds(&self) -> ApiResult<u64> {
        let minutes = match self.ttl_minutes.trim() {
            "" => DEFAULT_TTL_MINUTES,
            text => text.parse::<u64>().map_err(|_| {
                ApiError::validation("ttl_minutes must be a number of minutes (1–240)")
            })?,
        };
        Ok(minutes.saturating_mul(60))
    }
}

/// The submitted form, checked, with the host it acts through.
async fn checked(
    state: &AppState,
    caller: &Caller,
    host_id: &str,
    submitted: Result<Form<Action>, FormRejection>,
    confirmed: bool,
) -> ApiResult<(Action, HostInfo)> {
    let fields = form(submitted).map_err(|err| err.0)?;
    fields.check(caller, confirmed)?;
    let host = crate::app::fleet::host(state, host_id).await?;
    Ok((fields, host))
}

fn back_to(host: &HostInfo) -> axum::response::Response {
    see_other(&format!("/hosts/{}", host.host_id))
}

/// `POST /hosts/{host_id}/customer/block`.
pub async fn block(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    submitted: Result<Form<Action>, FormRejection>,
) -> WebResult {
    let (_, host) = checked(&state, &caller, &host_id, submitted, true).await?;
    customers::block(&state, &caller.email, &ip, &host.customer_id).await?;
    Ok(back_to(&host))
}

/// `POST /hosts/{host_id}/customer/unblock`.
pub async fn unblock(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    submitted: Result<Form<Action>, FormRejection>,
) -> WebResult {
    let (_, host) = checked(&state, &caller, &host_id, submitted, false).await?;
    customers::unblock(&state, &caller.email, &ip, &host.customer_id).await?;
    Ok(back_to(&host))
}

/// `POST /hosts/{host_id}/customer/retrieval-password`: the new password, once.
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    submitted: Result<Form<Action>, FormRejection>,
) -> WebResult {
    let (_, host) = checked(&state, &caller, &host_id, submitted, true).await?;
    let reset =
        customers::reset_retrieval_password(&state, &caller.email, &ip, &host.customer_id).await?;
    let nav = Nav::of(&state, &caller);
    let body = shown_once(&host, &reset);
    Ok(
        Html(page("New retrieval password", Some((&caller, nav)), body).into_string())
            .into_response(),
    )
}

fn shown_once(host: &HostInfo, reset: &CreatedCustomer) -> Markup {
    html! {
        div.card {
            p { "The retrieval password of " strong { (reset.customer.name) } " ("
                code { (reset.customer.id) } ") — copy it now: it is not shown again, and the "
                "old one no longer works." }
            code.secret #new-password { (reset.retrieval_password) }
            p { button #copy-password type="button" data-copy="new-password" hidden { "Copy" } }
            p.muted { "Boxes already enrolled keep working; enrolling, re-enrolling and fetching "
                "the controller config need this one from now on." }
        }
        p { a href={"/hosts/" (host.host_id)} { "Back to the host" } }
    }
}

/// `POST /hosts/{host_id}/recovery/arm`.
pub async fn arm_recovery(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    submitted: Result<Form<Action>, FormRejection>,
) -> WebResult {
    let (fields, host) = checked(&state, &caller, &host_id, submitted, true).await?;
    let ttl = fields.ttl_seconds()?;
    recovery::arm(&state, &caller.email, &ip, &host.host_id, ttl).await?;
    Ok(back_to(&host))
}

/// `POST /hosts/{host_id}/recovery/disarm`.
pub async fn disarm_recovery(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    submitted: Result<Form<Action>, FormRejection>,
) -> WebResult {
    let (_, host) = checked(&state, &caller, &host_id, submitted, false).await?;
    recovery::disarm(&state, &caller.email, &ip, &host.host_id).await?;
    Ok(back_to(&host))
}

/// The host page's section of these actions: only for a role that may take them.
pub(super) fn section(
    state: &AppState,
    caller: &Caller,
    host: &HostInfo,
    customer: Option<&CustomerInfo>,
) -> Markup {
    if !state.rbac.allows(&caller.role, MANAGE) {
        return html! {};
    }
    let now_ms = state.clock.now_ms();
    let base = format!("/hosts/{}", host.host_id);
    html! {
        h2 #actions { "Customer and recovery" }
        div.actions {
            @if let Some(customer) = customer { (customer_forms(caller, &base, customer)) }
            (recovery_forms(caller, &base, host, now_ms))
        }
    }
}

fn customer_forms(caller: &Caller, base: &str, customer: &CustomerInfo) -> Markup {
    let blocked = customer.status == "blocked";
    html! {
        p { "Customer " strong { (customer.name) } " is "
            (badge(if blocked { "down" } else { "ok" }, title_case(&customer.status))) "." }
        @if blocked {
            form.card method="post" action={(base) "/customer/unblock"} {
                (csrf(caller))
                p { "Its boxes are refused and it cannot enroll until unblocked." }
                button #unblock type="submit" { "Unblock customer" }
            }
        } @else {
            form.card method="post" action={(base) "/customer/block"} {
                (csrf(caller))
                (confirm("confirm-block", "I understand: the customer's boxes get no desired state and no operations, and it cannot enroll, until it is unblocked."))
                button #block type="submit" { "Block customer" }
            }
        }
        form.card method="post" action={(base) "/customer/retrieval-password"} {
            (csrf(caller))
            (confirm("confirm-reset", "I understand: the current retrieval password stops working at once; the new one is shown once."))
            button #reset-password type="submit" { "Reset retrieval password" }
        }
    }
}

fn recovery_forms(caller: &Caller, base: &str, host: &HostInfo, now_ms: i64) -> Markup {
    html! {
        @if let Some(until) = &host.recovery_mode_until {
            form.card method="post" action={(base) "/recovery/disarm"} {
                (csrf(caller))
                p { "Recovery mode is " span.warning { "armed" } " until " (when(until, now_ms)) "." }
                button #disarm-recovery type="submit" { "Disarm recovery" }
            }
        } @else {
            form.card method="post" action={(base) "/recovery/arm"} {
                (csrf(caller))
                label for="ttl-minutes" { "Arm recovery for" }
                select #ttl-minutes name="ttl_minutes" {
                    @for (minutes, text) in TTL_CHOICES {
                        option value=(minutes) selected[minutes == DEFAULT_TTL_MINUTES] { (text) }
                    }
                }
                (confirm("confirm-arm", "I understand: while armed, a new box with the customer's retrieval password can take over this host's identity, and this host's current key then stops working."))
                button #arm-recovery type="submit" { "Arm recovery" }
            }
        }
    }
}

fn csrf(caller: &Caller) -> Markup {
    html! { input type="hidden" name="csrf" value=(session::csrf(caller)); }
}

/// The required "I understand" box of a destructive action.
fn confirm(id: &str, text: &str) -> Markup {
    html! {
        p.confirm {
            input type="checkbox" id=(id) name="confirm" value="yes" required;
            " "
            label.inline for=(id) { (text) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_lasts_what_the_form_says() {
        let action = |ttl: &str| Action {
            ttl_minutes: ttl.into(),
            ..Action::default()
        };
        assert_eq!(action("").ttl_seconds().unwrap(), 3600);
        assert_eq!(action("15").ttl_seconds().unwrap(), 900);
        assert!(action("soon").ttl_seconds().is_err());
        for (minutes, _) in TTL_CHOICES {
            let seconds = minutes * 60;
            assert!(recovery::TTL_SECS.contains(&seconds), "{minutes}");
        }
    }
}
