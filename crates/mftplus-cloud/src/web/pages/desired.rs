//! A host's desired state (issue 15: "edit desired state, preview the classified diff,
//! publish"): the published JSON with its generation, a preview that marks each change benign
//! or destructive in words, and publishing with the generation the edit started from.
//!
//! The flow is `app::desired`, the API's own: the preview is its diff, publishing is its
//! update, so a destructive change becomes an op awaiting a signature exactly as
//! `mftctl desired set` makes it, and a stale base generation is 409 `generation_conflict`.
//! Each page makes a fixed number of store queries (the host, its ops for a publish).

use super::form;
use super::hosts::{badge, count, query_string};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::middleware::ClientIp;
use crate::state::AppState;
use crate::web::layout::{page, Nav};
use crate::web::{see_other, session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::Form;
use maud::{html, Markup};
use mftplus_types::fleet::{
    ChangeKind, DesiredChange, DesiredDiff, DesiredState, HostInfo, PutDesiredState,
};
use serde::Deserialize;

/// The permission `host_desired_put` requires: who may edit and publish.
const EDIT: &str = "fleet:manage";

/// The editor's form: the proposed state as JSON and the generation the edit started from.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Edit {
    csrf: String,
    desired: String,
    base_generation: String,
}

impl Edit {
    /// The proposal and its base generation, or the validation error a page shows.
    fn parse(&self) -> ApiResult<(DesiredState, u64)> {
        let base = self.base_generation.trim().parse::<u64>().map_err(|_| {
            ApiError::validation(
                "base_generation must be the generation the edit started from; reload the editor",
            )
        })?;
        let desired = serde_json::from_str::<DesiredState>(&self.desired).map_err(|err| {
            ApiError::validation(format!("the desired state is not valid: {err}"))
        })?;
        Ok((desired, base))
    }
}

fn desired_path(host_id: &str) -> String {
    format!("/hosts/{host_id}/desired")
}

fn pretty(desired: &DesiredState) -> ApiResult<String> {
    serde_json::to_string_pretty(desired).map_err(ApiError::internal)
}

/// `GET /hosts/{host_id}/desired`.
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(host_id): ApiPath<String>,
) -> WebResult {
    let host = crate::app::fleet::host(&state, &host_id).await?;
    let current = crate::app::desired::current(&state, &host_id).await?;
    let text = pretty(&current.desired_state)?;
    let editable = may_edit(&state, &caller);
    let body = html! {
        (facts(&host, current.generation))
        @if editable {
            form.editor method="post" action={(desired_path(&host.host_id)) "/preview"} {
                (editor_inputs(&caller, &text, current.generation))
                p.muted { "Removing a guest, shrinking its disk, detaching or wiping storage and any "
                    "field this cloud does not know are destructive: they wait for an operator's "
                    "signature. Everything else is published at once." }
                button #preview type="submit" { "Preview changes" }
            }
        } @else {
            pre #desired-json aria-label="Desired state (JSON)" { (text) }
            p.muted { "Your role (" (caller.role) ") may view the desired state; an operator edits it." }
        }
    };
    let title = format!("Desired state of {}", host.hostname);
    let nav = Nav::of(&state, &caller);
    Ok(Html(page(&title, Some((&caller, nav)), body).into_string()).into_response())
}

/// The host, the generation shown, and the way back.
fn facts(host: &HostInfo, generation: u64) -> Markup {
    html! {
        dl.facts #desired-facts {
            dt { "Host" } dd { a href={"/hosts/" (host.host_id)} { (host.hostname) } " " span.muted { (host.host_id) } }
            dt { "Generation" } dd { (generation) span.muted { " (the agent has applied " (host.applied_generation) ")" } }
        }
    }
}

/// The editor's inputs: the JSON (labelled), the base generation and the CSRF token.
fn editor_inputs(caller: &Caller, text: &str, base_generation: u64) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session::csrf(caller));
        input type="hidden" name="base_generation" value=(base_generation);
        label for="desired" { "Desired state (JSON)" }
        textarea #desired name="desired" rows="24" cols="100" spellcheck="false" required { (text) }
    }
}

/// `POST /hosts/{host_id}/desired/preview`: the classified diff of the proposal.
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(host_id): ApiPath<String>,
    submitted: Result<Form<Edit>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let (proposed, base) = fields.parse()?;
    let host = crate::app::fleet::host(&state, &host_id).await?;
    let diff = crate::app::desired::diff(&state, &host_id, &proposed).await?;
    let editable = may_edit(&state, &caller);
    let text = pretty(&proposed)?;
    let body = html! {
        (facts(&host, diff.generation))
        @if diff.generation != base {
            p.error #stale role="alert" {
                "The desired state changed since this edit started (from generation " (base)
                " to " (diff.generation) "): publishing it would be refused ("
                code { "generation_conflict" } "). "
                a href=(desired_path(&host.host_id)) { "Start again from the current state" } "."
            }
        }
        (changes(&diff))
        @if editable {
            form.editor method="post" action=(desired_path(&host.host_id)) {
                (editor_inputs(&caller, &text, base))
                @if !diff.changes.is_empty() {
                    button #publish type="submit" { "Publish" }
                    " "
                }
                button.secondary #preview-again type="submit"
                    formaction={(desired_path(&host.host_id)) "/preview"} { "Preview again" }
            }
        }
        p { a href=(desired_path(&host.host_id)) { "Back to the editor" } }
    };
    let title = format!("Changes to {}", host.hostname);
    let nav = Nav::of(&state, &caller);
    Ok(Html(page(&title, Some((&caller, nav)), body).into_string()).into_response())
}

/// Each change with its path and what publishing does with it, in words.
fn changes(diff: &DesiredDiff) -> Markup {
    let destructive = diff
        .changes
        .iter()
        .filter(|change| change.kind == ChangeKind::Destructive)
        .count();
    let benign = diff.changes.len() - destructive;
    html! {
        h2 { "Changes" }
        @if diff.changes.is_empty() {
            p.empty #no-changes { "No change: this is the published desired state. Edit the JSON, then preview again." }
        } @else {
            p #change-summary {
                (count(benign, "benign change")) " published at once; "
                (count(destructive, "destructive change")) " each waiting for a signature on the "
                a href="/ops" { "operations page" } "."
            }
            table #changes {
                thead { tr {
                    th scope="col" { "Change" } th scope="col" { "Path" }
                    th scope="col" { "Guest" } th scope="col" { "Effect" }
                } }
                tbody { @for change in &diff.changes { (change_row(change)) } }
            }
        }
    }
}

fn change_row(change: &DesiredChange) -> Markup {
    let (kind, word, effect) = match change.kind {
        ChangeKind::Benign => ("benign", "Benign", "published at once"),
        ChangeKind::Destructive => ("destructive", "Destructive", "waits for a signed operation"),
    };
    html! {
        tr data-kind=(kind) {
            td { code { (change.op) } }
            td { code { (change.path) } }
            td { (change.guest_id.as_deref().unwrap_or("—")) }
            td { (badge(kind, word)) " " span.muted { (effect) } }
        }
    }
}

/// `POST /hosts/{host_id}/desired`: publishes, then to the ops awaiting a signature when the
/// edit has any, else back to the host.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    submitted: Result<Form<Edit>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let (desired_state, base) = fields.parse()?;
    let edit = PutDesiredState {
        desired_state,
        expected_generation: Some(base),
    };
    let done = crate::app::desired::update(&state, &caller.email, &ip, &host_id, &edit).await?;
    if done.pending_ops.is_empty() {
        return Ok(see_other(&format!("/hosts/{host_id}")));
    }
    // Every status, so the operator watches the new op through to executed or failed; the
    // default view drops an op once it is finished.
    Ok(see_other(&format!(
        "/ops{}",
        query_string(&[("status", "all"), ("host", &host_id)])
    )))
}

/// The host page's way to its desired state.
pub(super) fn host_link(host: &HostInfo, may_edit: bool) -> Markup {
    html! {
        p #desired-link {
            a href=(desired_path(&host.host_id)) {
                @if may_edit { "Edit the desired state" } @else { "View the desired state" }
            }
            span.muted { " (generation " (host.desired_generation) ")" }
        }
    }
}

/// Whether `caller` may edit desired states (the host page's link says so).
pub(super) fn may_edit(state: &AppState, caller: &Caller) -> bool {
    state.rbac.allows(&caller.role, EDIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_what_is_wrong() {
        let edit = |desired: &str, base: &str| Edit {
            csrf: String::new(),
            desired: desired.into(),
            base_generation: base.into(),
        };
        let (state, base) = edit("{}", "3").parse().unwrap();
        assert_eq!((state, base), (DesiredState::default(), 3));
        assert!(edit("{}", "")
            .parse()
            .unwrap_err()
            .message
            .contains("base_generation"));
        assert!(edit("{", "0")
            .parse()
            .unwrap_err()
            .message
            .contains("not valid"));
    }
}
