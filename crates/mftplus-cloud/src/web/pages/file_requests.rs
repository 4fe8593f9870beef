//! File requests on the dashboard (decision 0034): the caller's requests (everyone's with
//! `transfers:read`) with their uploads and state, a form to make one (its link shown once),
//! and a revoke button on each active one. The flows are `app::requests`, the API's own.

use super::CsrfOnly;
use super::{form, revoke_button};
use crate::app::requests as app;
use crate::auth::Caller;
use crate::extract::ApiPath;
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::{see_other, session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::Form;
use maud::{html, Markup};
use mftplus_store::FileRequestRow;
use mftplus_types::requests::CreateFileRequest;
use serde::Deserialize;

/// `GET /requests`.
pub async fn index(State(state): State<AppState>, caller: Caller, scope: Scope) -> WebResult {
    render(&state, &caller, scope, None).await
}

async fn render(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    made: Option<String>,
) -> WebResult {
    let rows = app::list(state, caller, scope).await?;
    let owners = app::owner_emails(state, &rows).await?;
    let may_create = state.rbac.allows(&caller.role, "transfers:create");
    let may_revoke_all = state.rbac.allows(&caller.role, "transfers:cancel");
    let may_revoke_own = state.rbac.allows(&caller.role, "transfers:cancel:own");
    let now = state.clock.now_ms();
    let body = html! {
        p.muted {
            "A file request is a link for someone without an account: their browser encrypts "
            "what they upload to the requester's key, and " code { "mftctl receive" } " gets it "
            "like any transfer. The requester needs a key (" code { "mftctl keys init" } ")."
        }
        @if let Some(url) = &made {
            div.card #request-made role="status" {
                p { "Give this link to the person you ask; it is shown only now:" }
                p { code #request-url { (url) } }
            }
        }
        @if may_create {
            form.card #new-request method="post" action="/requests" {
                input type="hidden" name="csrf" value=(session::csrf(caller));
                label for="note" { "Message for the uploader" }
                input #note type="text" name="note" maxlength="500" autocomplete="off";
                label for="uploads" { "Uploads allowed" }
                input #uploads type="number" name="uploads" min="1" max="1000" value="1";
                label for="expires" { "Open for" }
                input #expires type="text" name="expires" value="7d";
                button #make-request type="submit" { "Make a request link" }
            }
        }
        @if rows.is_empty() {
            p.empty #requests-empty { "No file requests." }
        } @else {
            table #requests {
                thead { tr {
                    th scope="col" { "Request" } th scope="col" { "Owner" } th scope="col" { "Status" }
                    th scope="col" { "Uploads" } th scope="col" { "Expires" } th scope="col" { "Message" }
                    th scope="col" { "" }
                } }
                tbody {
                    @for row in &rows {
                        (request_row(caller, row, owners.get(&row.owner_id), now,
                            may_revoke_all || (may_revoke_own && row.owner_id == caller.user_id)))
                    }
                }
            }
        }
    };
    let nav = Nav::of(state, caller);
    Ok(Html(page("File requests", Some((caller, nav)), body).into_string()).into_response())
}

fn request_row(
    caller: &Caller,
    row: &FileRequestRow,
    owner: Option<&String>,
    now: i64,
    may_revoke: bool,
) -> Markup {
    let status = app::status(row, now);
    html! {
        tr data-request=(row.id) {
            td { code { (row.id.get(..12).unwrap_or(&row.id)) } }
            td { (owner.map_or("", String::as_str)) }
            td { span class={"status " (status)} { (status) } }
            td { (row.uploads) " of " (row.max_uploads) }
            td { (when(&crate::clock::rfc3339(row.expires_at_ms), now)) }
            td { (row.note) }
            td {
                @if may_revoke && row.revoked_at_ms.is_none() {
                    (revoke_button(caller, &format!("/requests/{}/revoke", row.id)))
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Create {
    csrf: String,
    note: String,
    uploads: String,
    expires: String,
}

/// `POST /requests`: makes a request and shows the list with its link, this once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    headers: http::HeaderMap,
    submitted: Result<Form<Create>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let uploads = match fields.uploads.trim() {
        "" => None,
        text => Some(text.parse::<u32>().map_err(|_| {
            crate::error::ApiError::validation("uploads must be a whole number from 1 to 1000")
        })?),
    };
    let body = CreateFileRequest {
        note: Some(fields.note),
        expires: Some(fields.expires).filter(|e| !e.trim().is_empty()),
        max_uploads: uploads,
        max_bytes: None,
    };
    let created = app::create(&state, &caller, &ip, &body).await?;
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let scheme = if session::secure(&state) {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{host}{}", app::page_path(&created.token));
    render(&state, &caller, scope, Some(url)).await
}

/// `POST /requests/{request_id}/revoke`: back to the list.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(request_id): ApiPath<String>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    app::revoke(&state, &caller, scope, &ip, &request_id).await?;
    Ok(see_other("/requests"))
}
