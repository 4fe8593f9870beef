//! The dashboard's pages, one module per resource.

pub mod hubs;
pub mod login;

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

/// `GET /`: the first page this role may see; a role with none gets a page saying so (with
/// the sign-out button), never an error.
pub async fn home(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    caller: crate::auth::Caller,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.rbac.allows(&caller.role, "hubs:read") {
        return super::see_other("/hubs");
    }
    let body = maud::html! {
        p.empty {
            "Your role (" (caller.role) ") has no dashboard pages yet. Transfers and your keys "
            "are in " code { "mftctl" } "."
        }
    };
    axum::response::Html(super::layout::page("MFTPlus", Some(&caller), body).into_string())
        .into_response()
}
