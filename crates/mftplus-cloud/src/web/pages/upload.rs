//! Sending a file from the browser (issue 16 item 3). The page's script (`assets/upload.js`)
//! encrypts the file in the page into the stream format (docs/stream-format.md: X25519
//! stanzas for the recipients' registered keys, AES-256-GCM chunks) and uploads the ciphertext
//! through the same API routes `mftctl send` uses, so the result is an ordinary transfer.
//!
//! The API never reads the session cookie (`web::session`), so the script asks this page for a
//! short-lived access token (`POST /transfers/upload-token`, CSRF-checked like every page
//! write). The token belongs to the session's family: signing out, revoking the session or
//! "revoke all my tokens" ends it with the session.

use super::form;
use crate::audit::AuditEvent;
use crate::auth::{Caller, CallerKind};
use crate::error::ApiError;
use crate::middleware::ClientIp;
use crate::state::AppState;
use crate::web::layout::{page, Nav};
use crate::web::{session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::{Form, Json};
use maud::html;
use serde::Deserialize;
use serde_json::json;

/// How long an upload token lives. The script asks for a new one before it lapses, so a long
/// upload keeps going while the session does; a token copied out of the page is soon useless.
pub const UPLOAD_TOKEN_SECONDS: u64 = 900;

/// `GET /transfers/new`.
pub async fn show(State(state): State<AppState>, caller: Caller) -> WebResult {
    let max_chunk = state.config.config.transfers.max_chunk_size;
    let body = html! {
        p.muted {
            "The file is encrypted in this browser before it leaves it: the cloud stores only "
            "ciphertext, and only the recipients' keys open it. Each recipient needs a key "
            "(" code { "mftctl keys init" } "); " code { "mftctl receive" } " opens the transfer."
        }
        noscript { p.error { "Sending from the browser needs JavaScript: the file is encrypted here." } }
        section #unfinished .card hidden {
            h2 { "Unfinished uploads" }
            p.muted { "Choose the same file again to continue where the upload stopped." }
            ul #unfinished-list {}
        }
        form #upload .card data-csrf=(session::csrf(&caller)) data-max-chunk=(max_chunk) {
            label for="file" { "File" }
            input #file type="file" name="file" required;
            label for="recipients" { "Recipients" }
            input #recipients type="text" name="recipients" autocomplete="off"
                placeholder="bob@example.com, carol@example.com" required;
            details {
                summary { "Options" }
                label for="chunk-size" { "Chunk size" }
                input #chunk-size type="text" name="chunk_size" value="10MiB";
                label for="expires" { "Expires after" }
                input #expires type="text" name="expires" placeholder="the server's default, e.g. 7d";
            }
            button #send type="submit" { "Encrypt and send" }
        }
        progress #upload-progress max="1" value="0" hidden {}
        p #upload-status role="status" aria-live="polite" {}
        p #upload-error .error role="alert" hidden {}
        script src="/static/upload.js" defer {}
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Send a file", Some((&caller, nav)), body).into_string()).into_response())
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
}

/// The role an upload token carries: `user` (which may send and read its own transfers) when
/// the caller's role may hand it out and it can send, else the caller's own. An administrator's
/// page then holds a token that can upload and no more.
fn upload_role(state: &AppState, caller_role: &str) -> String {
    const SENDER: &str = "user";
    if crate::rbac::may_grant(caller_role, SENDER) && state.rbac.allows(SENDER, "transfers:create")
    {
        SENDER.to_string()
    } else {
        caller_role.to_string()
    }
}

/// `POST /transfers/upload-token`: an access token for this session's user, with the
/// narrowest role that can upload ([`upload_role`]), in the session's family, for
/// [`UPLOAD_TOKEN_SECONDS`].
pub async fn token(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    submitted: Result<Form<TokenForm>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let CallerKind::Session { jti, .. } = &caller.kind else {
        return Err(ApiError::forbidden("upload tokens are for dashboard sessions").into());
    };
    let user = state
        .store
        .get_user(&caller.user_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let role = upload_role(&state, &caller.role);
    let (token, row) = state
        .issue_token(
            &user,
            &role,
            "access",
            jti,
            "dashboard-upload",
            UPLOAD_TOKEN_SECONDS,
        )
        .await?;
    state
        .audit(
            AuditEvent::new("token_created")
                .actor(&caller.email)
                .target(&caller.email)
                .ip(&ip)
                .details(json!({
                    "token_id": row.jti,
                    "role": role,
                    "ttl_seconds": UPLOAD_TOKEN_SECONDS,
                    "via": "dashboard-upload",
                })),
        )
        .await;
    let mut response = Json(json!({
        "token": token,
        "expires_in": UPLOAD_TOKEN_SECONDS,
    }))
    .into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
