//! A file request's public page (`/r/{token}`, decision 0034): whoever holds the link chooses a
//! file, their browser encrypts it to the requester's registered key (`assets/upload.js`, the
//! dashboard's upload script in its request mode) and uploads it through the request's public
//! routes. The result is an ordinary transfer to the requester.
//!
//! The page is the same for every token and reads nothing from the database: its script asks
//! the API what to encrypt to, so an unknown or refused request is told there. It is rendered
//! without the dashboard's navigation, under the same strict Content-Security-Policy.

use crate::web::layout::public_page;
use axum::response::Response;
use maud::html;

/// `GET /r/{token}`: the request's page. Its script does the work; without it, the page says
/// why.
pub async fn page() -> Response {
    public_page(
        "Send a file",
        "/static/upload.js",
        html! {
            noscript {
                p.error { "This page needs JavaScript: the file is encrypted in your browser, so the server never sees it." }
            }
            dl #request .facts hidden {
                dt { "For" } dd #request-recipient {}
                dt { "Message" } dd #request-note {}
                dt { "Uploads left" } dd #request-uploads-left {}
                dt { "Largest file" } dd #request-max-size {}
                dt { "Open until" } dd #request-expires {}
            }
            section #unfinished .card hidden {
                h2 { "Unfinished uploads" }
                p.muted { "Choose the same file again to continue where the upload stopped." }
                ul #unfinished-list {}
            }
            form #upload .card data-mode="request" hidden {
                label for="file" { "File" }
                input #file type="file" name="file" required;
                details {
                    summary { "Options" }
                    label for="chunk-size" { "Chunk size" }
                    input #chunk-size type="text" name="chunk_size" value="10MiB";
                }
                button #send type="submit" { "Encrypt and send" }
            }
            progress #upload-progress max="1" value="0" hidden {}
            p #upload-status role="status" aria-live="polite" { "Loading…" }
            p #upload-error .error role="alert" hidden {}
            p.muted {
                "End-to-end encrypted: the file is encrypted in this browser to the key of "
                "the person who asked for it, so the server only ever holds ciphertext."
            }
        },
    )
}
