//! The signed-in person's own sign-ins (seed 001: "mftctl auth token list", "revoke a specific
//! token", "revoke all tokens"): dashboard sessions, `mftctl login`s and tokens issued to
//! them, each of which they can end. Ending the one in use signs out.
//!
//! Bounded work: one store query (`app::tokens::sign_ins`, [`PAGE`] newest first behind a
//! time cursor).

use super::form;
use super::hosts::{count, non_empty, query_string, when_or};
use super::CsrfOnly;
use crate::app;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::middleware::ClientIp;
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::{see_other, session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use axum::Form;
use maud::{html, Markup};
use mftplus_store::{TimeCursor, TokenRow};
use serde::Deserialize;

/// Sign-ins per page.
pub const PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// The cursor: sign-ins that started before this time (ms), ties broken by id.
    before_ms: String,
    before_id: String,
}

impl View {
    fn cursor(&self) -> Result<Option<TimeCursor>, ApiError> {
        let (Some(at), Some(id)) = (non_empty(&self.before_ms), non_empty(&self.before_id)) else {
            return Ok(None);
        };
        let at_ms = at
            .parse()
            .map_err(|_| ApiError::validation("before_ms must be a number"))?;
        Ok(Some(TimeCursor {
            at_ms,
            id: id.to_string(),
        }))
    }
}

/// What a sign-in is, in words.
fn kind_of(row: &TokenRow) -> &'static str {
    match (row.kind.as_str(), row.created_via.as_str()) {
        ("session", _) => "Dashboard session",
        (_, "admin") => "Token issued by an administrator",
        _ => "mftctl login",
    }
}

/// `GET /sessions`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    Query(view): Query<View>,
) -> WebResult {
    let cursor = view.cursor()?;
    let listing = app::tokens::sign_ins(&state, &caller, cursor.as_ref(), PAGE).await?;
    let current = app::tokens::current_family(&caller);
    let now_ms = state.clock.now_ms();
    let everywhere = state.rbac.allows(&caller.role, "tokens:manage:own");
    let body = html! {
        p.muted { "Where you are signed in. End any you do not recognise; ending this one signs you out. API keys are on their own page." }
        @if listing.sign_ins.is_empty() {
            p.empty #no-sessions { "No more sign-ins. " a href="/sessions" { "Back to the first page" } }
        } @else {
            table #sessions {
                caption.muted { (count(listing.sign_ins.len(), "sign-in")) ", newest first" }
                thead { tr {
                    th scope="col" { "Kind" } th scope="col" { "Started" } th scope="col" { "Last used" }
                    th scope="col" { "Expires" } th scope="col" { "Role" } th scope="col" { span.muted { "Action" } }
                } }
                tbody {
                    @for row in &listing.sign_ins {
                        @let this = current == Some(row.family_id.as_str());
                        tr data-session=(row.jti) {
                            td { (kind_of(row)) @if this { " " strong.current { "(this session)" } } }
                            td { (when(&crate::clock::rfc3339(row.issued_at_ms), now_ms)) }
                            td { (used(row, now_ms)) }
                            td { (when(&crate::clock::rfc3339(row.expires_at_ms), now_ms)) }
                            td { (row.role) }
                            td {
                                form.inline method="post" action={"/sessions/" (row.jti) "/revoke"} {
                                    input type="hidden" name="csrf" value=(session::csrf(&caller));
                                    button.secondary type="submit" aria-label={"End " (kind_of(row)) " started " (crate::clock::rfc3339(row.issued_at_ms))} {
                                        @if this { "Sign out" } @else { "End" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &listing.next {
                @let at = next.at_ms.to_string();
                p.pager { a rel="next" href={"/sessions" (query_string(&[("before_ms", &at), ("before_id", &next.id)]))} { "Next page" } }
            }
        }
        @if everywhere {
            form.card method="post" action={"/users/" (caller.user_id) "/tokens/revoke"} {
                input type="hidden" name="csrf" value=(session::csrf(&caller));
                p { "End every session and token of yours at once, this one included." }
                button.secondary #sign-out-everywhere type="submit" { "Sign out everywhere" }
            }
        }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Sessions", Some((&caller, nav)), body).into_string()).into_response())
}

/// When a dashboard session was last used; other sign-ins do not record it.
fn used(row: &TokenRow, now_ms: i64) -> Markup {
    let at = (row.kind == "session")
        .then_some(row.used_at_ms)
        .flatten()
        .map(crate::clock::rfc3339);
    when_or(at.as_deref(), now_ms, "—")
}

/// `POST /sessions/{session_id}/revoke`: ends that sign-in; the one in use signs out.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(session_id): ApiPath<String>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    if app::tokens::end_sign_in(&state, &caller, &ip, &session_id).await? {
        return super::users::signed_out(&state);
    }
    Ok(see_other("/sessions"))
}
