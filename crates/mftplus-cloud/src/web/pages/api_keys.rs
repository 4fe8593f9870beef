//! API keys (seed 001: "mftctl apikeys create --name … --role readonly --expires 90d", "list",
//! "delete", "rotate"). Whose keys the page shows is the route's scope, exactly as the API
//! decides: `apikeys:manage` everyone's, `apikeys:manage:own` the caller's own. A new or
//! rotated key is shown once, on the answer page, with a copy button; the list shows only the
//! prefix.
//!
//! Bounded work: the list is two store queries (`app::api_keys::page`: [`PAGE`] keys newest
//! first behind a time cursor, then their owners at once).

use super::form;
use super::hosts::{badge, count, non_empty, query_string, title_case, when_or};
use super::CsrfOnly;
use crate::app;
use crate::app::api_keys::KeyPage;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::middleware::{ClientIp, Scope};
use crate::rbac::may_grant;
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::{see_other, session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use axum::Form;
use maud::{html, Markup};
use mftplus_store::TimeCursor;
use mftplus_types::api::{ApiKey, CreateApiKeyRequest, CreatedApiKey};
use serde::Deserialize;

/// Keys per page of the list.
pub const PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// `1`: revoked keys too.
    revoked: String,
    /// The cursor: keys created before this time (ms), ties broken by id.
    before_ms: String,
    before_id: String,
}

impl View {
    fn include_revoked(&self) -> bool {
        self.revoked == "1"
    }

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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewKey {
    csrf: String,
    name: String,
    role: String,
    /// A duration such as `30d`; empty: the longest the rotation policy allows.
    expires: String,
}

/// `GET /keys`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    Query(view): Query<View>,
) -> WebResult {
    let listing = app::api_keys::page(
        &state,
        &caller,
        scope,
        view.include_revoked(),
        view.cursor()?,
        PAGE,
    )
    .await?;
    let body = html! {
        p.muted {
            @if scope == Scope::All { "Every user's API keys." } @else { "Your API keys." }
            " A key acts with its role, never above its owner's current role. "
            @if view.include_revoked() { a href="/keys" { "Hide revoked keys" } }
            @else { a href="/keys?revoked=1" { "Show revoked keys" } }
        }
        (key_table(&state, &caller, scope, &view, &listing))
        (create_form(&state, &caller))
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("API keys", Some((&caller, nav)), body).into_string()).into_response())
}

fn key_table(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    view: &View,
    listing: &KeyPage,
) -> Markup {
    let now_ms = state.clock.now_ms();
    if listing.keys.is_empty() {
        return html! {
            p.empty #no-keys {
                @if view.before_id.is_empty() { "No API key yet. Create one below; it is shown once." }
                @else { "No more keys. " a href="/keys" { "Back to the first page" } }
            }
        };
    }
    html! {
        table #api-keys {
            caption.muted { (count(listing.keys.len(), "key")) ", newest first" }
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Prefix" } th scope="col" { "Role" }
                @if scope == Scope::All { th scope="col" { "Owner" } }
                th scope="col" { "Status" } th scope="col" { "Expires" } th scope="col" { "Last used" }
                th scope="col" { "Created" } th scope="col" { span.muted { "Actions" } }
            } }
            tbody {
                @for key in &listing.keys { (key_row(caller, scope, key, now_ms)) }
            }
        }
        @if let Some(next) = &listing.next {
            @let revoked = if view.include_revoked() { "1" } else { "" };
            @let at = next.at_ms.to_string();
            p.pager { a rel="next" href={"/keys" (query_string(&[("revoked", revoked), ("before_ms", &at), ("before_id", &next.id)]))} { "Next page" } }
        }
    }
}

fn key_row(caller: &Caller, scope: Scope, key: &ApiKey, now_ms: i64) -> Markup {
    let csrf = session::csrf(caller);
    html! {
        tr data-key=(key.id) {
            td { (key.name) }
            td { code { (key.prefix) "…" } }
            td { (key.role) }
            @if scope == Scope::All { td { (key.owner_email) } }
            td { (badge(&key.status, title_case(&key.status))) }
            td { (when_or(key.expires_at.as_deref(), now_ms, "never")) }
            td { (when_or(key.last_used_at.as_deref(), now_ms, "never")) }
            td { (when(&key.created_at, now_ms)) }
            td {
                @if key.revoked_at.is_none() {
                    form.inline method="post" action={"/keys/" (key.id) "/rotate"} {
                        input type="hidden" name="csrf" value=(csrf);
                        button.secondary type="submit" aria-label={"Rotate " (key.name)} { "Rotate" }
                    }
                    " "
                    form.inline method="post" action={"/keys/" (key.id) "/revoke"} {
                        input type="hidden" name="csrf" value=(csrf);
                        button.secondary type="submit" aria-label={"Revoke " (key.name)} { "Revoke" }
                    }
                }
            }
        }
    }
}

fn create_form(state: &AppState, caller: &Caller) -> Markup {
    let roles: Vec<String> = state
        .rbac
        .role_names()
        .into_iter()
        .filter(|role| may_grant(&caller.role, role))
        .collect();
    let max_days = state.config.config.api_keys.rotation_required_days;
    html! {
        h2 { "Create an API key" }
        form.card method="post" action="/keys" {
            input type="hidden" name="csrf" value=(session::csrf(caller));
            label for="name" { "Name" }
            input #name type="text" name="name" required maxlength="200" placeholder="Service Account - Backup";
            label for="role" { "Role (what the key may do)" }
            select #role name="role" required {
                @for role in &roles { option value=(role) selected[*role == caller.role] { (role) } }
            }
            label for="expires" { "Expires after" }
            input #expires type="text" name="expires" maxlength="20" placeholder={(max_days) "d"} aria-describedby="expires-hint";
            p.muted #expires-hint { "A duration such as 30d or 12h; empty means " (max_days) " days, the longest the rotation policy allows." }
            p { button #create-key type="submit" { "Create key" } }
        }
    }
}

/// `POST /keys`: the new key, once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    submitted: Result<Form<NewKey>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let request = CreateApiKeyRequest {
        name: fields.name,
        role: non_empty(&fields.role).map(str::to_string),
        expires: non_empty(&fields.expires).map(str::to_string),
    };
    let created = app::api_keys::create(&state, &caller, &ip, request).await?;
    shown_once(&state, &caller, "API key created", &created)
}

/// `POST /keys/{key_id}/rotate`: the replacement key, once; the old one stops working.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(key_id): ApiPath<String>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let rotated = app::api_keys::rotate(&state, &caller, scope, &ip, &key_id).await?;
    shown_once(&state, &caller, "API key rotated", &rotated)
}

/// `POST /keys/{key_id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(key_id): ApiPath<String>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    app::api_keys::revoke(&state, &caller, scope, &ip, &key_id).await?;
    Ok(see_other("/keys"))
}

fn shown_once(
    state: &AppState,
    caller: &Caller,
    title: &str,
    created: &CreatedApiKey,
) -> WebResult {
    let key = &created.api_key;
    let now_ms = state.clock.now_ms();
    let body = html! {
        div.card {
            p { "Key " strong { (key.name) } " (role " (key.role) ") — copy it now: it is not shown again." }
            code.secret #new-key { (created.key) }
            p { button #copy-key type="button" data-copy="new-key" hidden { "Copy" } }
            p.muted {
                "Expires " (when_or(key.expires_at.as_deref(), now_ms, "never")) ". Use it as "
                code { "X-API-Key" } " or with " code { "mftctl --api-key" } "."
            }
        }
        p { a href="/keys" { "Back to API keys" } }
    };
    let nav = Nav::of(state, caller);
    Ok(Html(page(title, Some((caller, nav)), body).into_string()).into_response())
}
