//! The dashboard's pages, one module per resource.

pub mod api_keys;
pub mod audit;
pub mod customer_actions;
pub mod customers;
pub mod desired;
pub mod events;
pub mod file_requests;
pub mod hosts;
pub mod hubs;
pub mod links;
pub mod login;
pub mod ops;
pub mod requests;
pub mod sessions;
pub mod transfers;
pub mod upload;
pub mod users;

use crate::error::ApiError;
use axum::extract::rejection::FormRejection;
use axum::Form;

/// A submitted form, or the page error a malformed one deserves.
pub fn form<T>(submitted: Result<Form<T>, FormRejection>) -> Result<T, super::WebError> {
    submitted.map(|Form(fields)| fields).map_err(|rejection| {
        super::WebError(ApiError::validation(format!(
            "the form could not be read: {rejection}"
        )))
    })
}

/// The body of a form whose only field is its CSRF token (revoke, verify, sign out…).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct CsrfOnly {
    pub csrf: String,
}

/// A one-button form posting this session's CSRF token to `action` (a link's or a file
/// request's Revoke).
pub fn revoke_button(caller: &crate::auth::Caller, action: &str) -> maud::Markup {
    maud::html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(crate::web::session::csrf(caller));
            button.secondary type="submit" { "Revoke" }
        }
    }
}

/// `GET /`: the first page this role may see; a role with none gets a page saying so (with
/// the sign-out button), never an error.
pub async fn home(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    caller: crate::auth::Caller,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let nav = super::layout::Nav::of(&state, &caller);
    if nav.hubs {
        return super::see_other("/hubs");
    }
    if nav.fleet {
        return super::see_other("/hosts");
    }
    if nav.audit {
        return super::see_other("/audit");
    }
    // Before the keys page: sending and receiving files is what a plain user comes for.
    if nav.transfers {
        return super::see_other("/transfers");
    }
    if nav.api_keys {
        return super::see_other("/keys");
    }
    let body = maud::html! {
        p.empty {
            "Your role (" (caller.role) ") has no dashboard pages yet. Transfers and your keys "
            "are in " code { "mftctl" } "."
        }
    };
    axum::response::Html(super::layout::page("MFTPlus", Some((&caller, nav)), body).into_string())
        .into_response()
}
