//! Share links in the browser (decision 0023): the public page a link opens (`/s/{token}`),
//! and on a transfer's dashboard page the list of its links with a revoke button.
//!
//! The public page is the same for every token and reads nothing from the database: its
//! script (`assets/link.js`) asks the API for the file's ciphertext details, so an unknown or
//! refused link is told there, and the page itself leaks nothing. It is rendered without the
//! dashboard's navigation, and under the same strict Content-Security-Policy.

use super::CsrfOnly;
use super::{form, revoke_button};
use crate::app::links as app;
use crate::auth::Caller;
use crate::extract::ApiPath;
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use crate::web::layout::{public_page, when};
use crate::web::{see_other, session, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use mftplus_store::{LinkRow, TransferRow};

/// `GET /s/{token}`: the link's page. Its script does the work; without it, the page says why.
pub async fn page() -> Response {
    public_page(
        "Shared file",
        "/static/link.js",
        html! {
            noscript {
                p.error { "This page needs JavaScript: the file is decrypted in your browser, so the server never sees it." }
            }
            p #link-status role="status" aria-live="polite" { "Loading…" }
            p #link-error .error role="alert" hidden {}
            div #link-passphrase .card hidden {
                form #passphrase-form {
                    label for="passphrase" { "Passphrase" }
                    p.muted #passphrase-note { "The sender protected this file with a passphrase; they will have told you it separately." }
                    input #passphrase type="password" autocomplete="off" required;
                    " "
                    button #unlock type="submit" { "Unlock" }
                }
            }
            dl #link-file .facts hidden {
                dt { "File" } dd #file-name {}
                dt { "Size" } dd #file-size {}
                dt { "Link expires" } dd #link-expires {}
                dt { "Downloads left" } dd #downloads-left {}
            }
            p {
                button #download type="button" hidden { "Download" }
            }
            progress #progress hidden value="0" max="1" {}
            p.muted {
                "End-to-end encrypted: the key is the part of the link after #, which your "
                "browser never sends to the server. The file is decrypted and checked in this "
                "page; the server only ever holds ciphertext."
            }
        },
    )
}

/// The links of a transfer for its dashboard page: shown to its sender and to whoever may read
/// every transfer; each active one with a revoke button for who may cancel the transfer.
pub async fn section(state: &AppState, caller: &Caller, row: &TransferRow) -> Markup {
    let sender = crate::app::transfers::sent_by(row, caller);
    if !sender && !state.rbac.allows(&caller.role, "transfers:read") {
        return html! {};
    }
    let links = match state.store.list_links(&row.id).await {
        Ok(links) => links,
        Err(err) => {
            tracing::error!(error = %err, "listing a transfer's links failed");
            return html! { p.error { "The transfer's share links could not be read." } };
        }
    };
    let may_revoke = state.rbac.allows(&caller.role, "transfers:cancel")
        || (sender && state.rbac.allows(&caller.role, "transfers:cancel:own"));
    let now = state.clock.now_ms();
    html! {
        h2 { "Share links" }
        @if links.is_empty() {
            p.empty #links-empty {
                "No share links. " code { "mftctl send FILE --link" } " makes one when the file is "
                "sent; making one here needs the file key in this page, which comes with upload "
                "from the browser."
            }
        } @else {
            table #links {
                thead { tr {
                    th scope="col" { "Link" } th scope="col" { "Status" } th scope="col" { "Expires" }
                    th scope="col" { "Downloads" } th scope="col" { "Last opened" } th scope="col" { "" }
                } }
                tbody {
                    @for link in &links { (link_row(caller, row, link, now, may_revoke)) }
                }
            }
            p.muted { "The server knows a link only by its token's hash; the key is in the part after #, which only the sender saw." }
        }
    }
}

fn link_row(
    caller: &Caller,
    row: &TransferRow,
    link: &LinkRow,
    now: i64,
    may_revoke: bool,
) -> Markup {
    let status = app::status(link, now);
    let downloads = match link.max_downloads {
        Some(max) => format!("{} of {max}", link.downloads),
        None => link.downloads.to_string(),
    };
    html! {
        tr data-link=(link.id) {
            td { code { (link.id.get(..12).unwrap_or(&link.id)) } }
            td { span class={"status " (status)} { (status) } }
            td { (when(&crate::clock::rfc3339(link.expires_at_ms), now)) }
            td { (downloads) }
            td {
                @match link.last_opened_at_ms {
                    Some(at) => (when(&crate::clock::rfc3339(at), now)),
                    None => span.muted { "Never" },
                }
            }
            td {
                @if may_revoke && link.revoked_at_ms.is_none() {
                    (revoke_button(caller, &format!("/transfers/{}/links/{}/revoke", row.id, link.id)))
                }
            }
        }
    }
}

/// `POST /transfers/{transfer_id}/links/{link_id}/revoke`: back to the transfer's page.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath((transfer_id, link_id)): ApiPath<(String, String)>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let link = state
        .store
        .get_link(&link_id)
        .await?
        .filter(|link| link.transfer_id == transfer_id)
        .ok_or_else(|| crate::error::ApiError::not_found("link"))?;
    app::revoke(&state, &caller, scope, &ip, &link.id).await?;
    Ok(see_other(&format!("/transfers/{transfer_id}")))
}
