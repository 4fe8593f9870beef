//! Hubs and deploy keys (seed 000: "Log in to the MFTPlus Cloud Dashboard → Hubs → Deploy Keys
//! → Generate"). The hubs table follows its data live; a new key is shown once.

use super::form;
use super::hosts::when_or;
use super::CsrfOnly;
use crate::auth::Caller;
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
use mftplus_types::hubs::{CreatedDeployKey, DeployKeyInfo, HubInfo};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// `table`: only the live region, for `assets/app.js`.
    fragment: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewKey {
    csrf: String,
    label: String,
}

/// `GET /hubs`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    Query(view): Query<View>,
) -> WebResult {
    let hubs = crate::app::deploy_keys::hubs(&state).await?;
    let keys = crate::app::deploy_keys::keys(&state).await?;
    let manage = state.rbac.allows(&caller.role, "hubs:manage");
    let region = live_region(&state, &caller, &hubs, &keys, manage);
    if view.fragment == "table" {
        return Ok(Html(region.into_string()).into_response());
    }
    let body = html! {
        div #hubs-live data-live="/live/hubs" data-fragment="/hubs?fragment=table" {
            (region)
        }
        @if manage {
            h2 { "Generate a deploy key" }
            form.card method="post" action="/hubs/deploy-keys" {
                input type="hidden" name="csrf" value=(session::csrf(&caller));
                label for="label" { "Label" }
                input #label type="text" name="label" required maxlength="100" placeholder="jhb-hub-prod";
                p.muted { "The key is shown once, right after it is generated." }
                button #generate type="submit" { "Generate" }
            }
        }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Hubs", Some((&caller, nav)), body).into_string()).into_response())
}

/// `GET /hubs/{hub_id}`: one hub with everything its registration and heartbeats told.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(hub_id): ApiPath<String>,
) -> WebResult {
    let hub = crate::app::deploy_keys::hub(&state, &hub_id).await?;
    let now_ms = state.clock.now_ms();
    let body = html! {
        dl.facts #hub-facts {
            dt { "Status" }
            dd { span class={"status " (hub.status)} data-status=(hub.status) { (title_case(&hub.status)) } }
            dt { "Hub id" } dd { code { (hub.hub_id) } }
            dt { "Version" }
            dd {
                (hub.hub_version)
                @if hub.versions_behind > 0 {
                    span.muted { " · " (hub.versions_behind) " minor release(s) behind this cloud" }
                }
                @if let Some(warning) = &hub.warning { br; span.warning { (warning) } }
            }
            dt { "Platform" } dd { (hub.platform) }
            dt { "License" } dd { (hub.license_mode) }
            dt { "Deploy key" } dd { (hub.deploy_key_label) " " span.muted { (hub.deploy_key_id) } }
            dt { "Registered" } dd { (when(&hub.registered_at, now_ms)) }
            dt { "Last seen" } dd { (when(&hub.last_seen_at, now_ms)) }
            dt { "Last validated" } dd { (when_or(hub.last_validated_at.as_deref(), now_ms, "never")) }
            dt { "Health" }
            dd { @if hub.healthy { "Healthy, by its last heartbeat" } @else { "Unhealthy, by its last heartbeat" } }
        }
        h2 { "What the hub reports" }
        @if hub.issues.is_empty() {
            p.empty #no-issues { "No issue: the last heartbeat reported none." }
        } @else {
            ul #issues { @for issue in &hub.issues { li { (issue) } } }
        }
        p { a href="/hubs" { "Back to hubs" } }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page(&hub.hostname, Some((&caller, nav)), body).into_string()).into_response())
}

/// What the live region shows: hubs, then deploy keys.
fn live_region(
    state: &AppState,
    caller: &Caller,
    hubs: &[HubInfo],
    keys: &[DeployKeyInfo],
    manage: bool,
) -> Markup {
    let now_ms = state.clock.now_ms();
    html! {
        @if hubs.is_empty() {
            p.empty #no-hubs {
                "No hub has registered yet. "
                @if manage { "Generate a deploy key below, then start" } @else { "An operator generates a deploy key; start" }
                " a hub with " code { "HUB_REGISTRATION_KEY" } " set to it, and it appears here by itself."
            }
        } @else {
            table #hubs {
                caption.muted { (hubs.len()) @if hubs.len() == 1 { " hub" } @else { " hubs" } }
                thead { tr { th { "Hub" } th { "Status" } th { "Version" } th { "Last seen" } th { "Deploy key" } } }
                tbody {
                    @for hub in hubs {
                        tr data-hub=(hub.hub_id) {
                            td { a href={"/hubs/" (hub.hub_id)} { (hub.hostname) } br; span.muted { (hub.hub_id) } }
                            td { span class={"status " (hub.status)} data-status=(hub.status) { (title_case(&hub.status)) } }
                            td {
                                (hub.hub_version)
                                @if let Some(warning) = &hub.warning { br; span.warning { (warning) } }
                            }
                            td { (when(&hub.last_seen_at, now_ms)) }
                            td { (hub.deploy_key_label) }
                        }
                    }
                }
            }
        }
        h2 { "Deploy keys" }
        @if keys.is_empty() {
            p.empty { "No deploy key yet." }
        } @else {
            table #deploy-keys {
                thead { tr { th { "Label" } th { "Prefix" } th { "Status" } th { "Hubs" } th { "Created" } @if manage { th { span.muted { "Action" } } } } }
                tbody {
                    @for key in keys {
                        tr data-key=(key.id) {
                            td { (key.label) }
                            td { code { (key.prefix) "…" } }
                            td {
                                span class={"status " (key.status)} { (title_case(&key.status)) }
                                @if let Some(until) = &key.expires_at { " until " (until) }
                            }
                            td { (key.hubs) }
                            td { (when(&key.created_at, now_ms)) " by " (key.created_by) }
                            @if manage {
                                td {
                                    // A rotated key is still accepted until its grace ends;
                                    // ending that early is a revocation like any other.
                                    @if key.status != "revoked" {
                                        form.inline method="post" action={"/hubs/deploy-keys/" (key.id) "/revoke"} {
                                            input type="hidden" name="csrf" value=(session::csrf(caller));
                                            button.secondary type="submit" aria-label={"Revoke " (key.label)} { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /hubs/deploy-keys`: the new key, once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    submitted: Result<Form<NewKey>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let created =
        crate::app::deploy_keys::create(&state, &caller.email, &ip, &fields.label).await?;
    let nav = Nav::of(&state, &caller);
    let body = shown_once(&created);
    Ok(
        Html(page("Deploy key generated", Some((&caller, nav)), body).into_string())
            .into_response(),
    )
}

fn shown_once(created: &CreatedDeployKey) -> Markup {
    html! {
        div.card {
            p { "Deploy key " strong { (created.label) } " — copy it now: it is not shown again." }
            code.secret #new-key { (created.key) }
            p { button #copy-key type="button" data-copy="new-key" hidden { "Copy" } }
            p.muted { "Start a hub with it:" }
            code.secret { "HUB_REGISTRATION_KEY=" (created.key) }
        }
        p { a href="/hubs" { "Back to hubs" } }
    }
}

/// `POST /hubs/deploy-keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    crate::app::deploy_keys::revoke(&state, &caller.email, &ip, &id).await?;
    Ok(see_other("/hubs"))
}

fn title_case(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
