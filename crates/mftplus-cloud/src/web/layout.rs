//! The frame every page shares: the head (one stylesheet, one deferred script), the main
//! navigation, who is signed in and the sign-out button, and the error page.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use maud::{html, Markup, DOCTYPE};

/// Which sections the main navigation links to: only those the caller's role may open, with
/// the permissions their routes require (`routes.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nav {
    /// Hubs and deploy keys (`hubs:read`).
    pub hubs: bool,
    /// Customers, hosts, operations and events (`fleet:read`).
    pub fleet: bool,
    /// The audit log (`logs:read`).
    pub audit: bool,
    /// People's accounts (`users:read`).
    pub users: bool,
    /// API keys: the caller's own at least (`apikeys:manage:own`).
    pub api_keys: bool,
    /// Transfers: the caller's own at least (`transfers:read:own`, which `transfers:read`
    /// covers).
    pub transfers: bool,
}

impl Nav {
    /// The sections `caller`'s role may see.
    pub fn of(state: &AppState, caller: &Caller) -> Nav {
        Nav::from_permissions(|permission| state.rbac.allows(&caller.role, permission))
    }

    /// The sections a role that holds the permissions `allows` says yes to may see.
    pub fn from_permissions(allows: impl Fn(&str) -> bool) -> Nav {
        Nav {
            hubs: allows("hubs:read"),
            fleet: allows("fleet:read"),
            audit: allows("logs:read"),
            users: allows("users:read"),
            api_keys: allows("apikeys:manage:own"),
            transfers: allows("transfers:read:own"),
        }
    }
}

/// A whole page around `body`; `signed_in` is who is signed in with what they may open.
pub fn page(title: &str, signed_in: Option<(&Caller, Nav)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · MFTPlus" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "MFTPlus" }
                    @if let Some((caller, nav)) = signed_in {
                        nav aria-label="Main" {
                            @if nav.transfers {
                                a href="/transfers" { "Transfers" }
                                a href="/requests" { "File requests" }
                            }
                            @if nav.hubs { a href="/hubs" { "Hubs" } }
                            @if nav.fleet {
                                a href="/customers" { "Customers" }
                                a href="/hosts" { "Hosts" }
                                a href="/ops" { "Operations" }
                                a href="/events" { "Events" }
                            }
                            @if nav.audit { a href="/audit" { "Audit" } }
                            @if nav.users { a href="/users" { "Users" } }
                            @if nav.api_keys { a href="/keys" { "API keys" } }
                        }
                        div.who {
                            span { (caller.email) " · " (caller.role) }
                            a href="/sessions" { "Sessions" }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(super::session::csrf(caller));
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page for someone who is not signed in and holds a token in the address (a share link's, a
/// file request's): no navigation, its one script, `data-state="loading"` on the body for the
/// script to move on, and no referrer that could carry the token anywhere.
pub fn public_page(title: &str, script: &str, main: Markup) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · MFTPlus" }
                link rel="stylesheet" href="/static/app.css";
                script src=(script) defer {}
            }
            body data-state="loading" {
                header.top { span.brand { "MFTPlus" } }
                main #main { h1 { (title) } (main) }
            }
        }
    };
    let mut response = axum::response::Html(body.into_string()).into_response();
    response.headers_mut().insert(
        "referrer-policy",
        http::HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The page for a refused or failed request: what happened, in words and as the stable code.
pub fn error_page(status: http::StatusCode, err: &ApiError) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    page(
        title,
        None,
        html! {
            p.error role="alert" { (err.message) }
            p.muted { "Code: " code { (err.code.as_str()) } " (HTTP " (status.as_u16()) ")" }
            p { a href="/" { "Back to the dashboard" } }
        },
    )
}

/// A time for people: relative ("3 min ago", "in 2 h") with the exact RFC 3339 time on hover.
pub fn when(rfc3339: &str, now_ms: i64) -> Markup {
    let relative = chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|at| ago(now_ms - at.timestamp_millis()))
        .unwrap_or_else(|_| rfc3339.to_string());
    html! { time datetime=(rfc3339) title=(rfc3339) { (relative) } }
}

/// `ms` milliseconds ago; a negative age is a time to come ("in 5 min").
fn ago(ms: i64) -> String {
    if ms <= -10_000 {
        let span = ago(-ms);
        return format!("in {}", span.trim_end_matches(" ago"));
    }
    let secs = ms.max(0) / 1000;
    match secs {
        0..=9 => "just now".into(),
        10..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_page_shows_is_escaped() {
        let err = ApiError::forbidden("<script>alert(1)</script>");
        let text = error_page(http::StatusCode::FORBIDDEN, &err).into_string();
        assert!(!text.contains("<script>alert"), "{text}");
        assert!(text.contains("&lt;script&gt;"));
        assert_eq!(ago(5_000), "just now");
        assert_eq!(ago(125_000), "2 min ago");
        assert_eq!(ago(-3 * 3_600_000), "in 3 h");
        assert_eq!(ago(-2_000), "just now");
    }

    #[test]
    fn the_navigation_follows_the_permissions() {
        let readonly = Nav::from_permissions(|p| p == "fleet:read" || p == "hubs:read");
        assert_eq!(
            readonly,
            Nav {
                hubs: true,
                fleet: true,
                ..Nav::default()
            }
        );
        let auditor = Nav::from_permissions(|p| p == "logs:read");
        assert!(auditor.audit && !auditor.fleet && !auditor.hubs);
        let keys_only = Nav::from_permissions(|p| p == "apikeys:manage:own");
        assert!(keys_only.api_keys && !keys_only.users);
        let own_transfers = Nav::from_permissions(|p| p == "transfers:read:own");
        assert!(own_transfers.transfers && !own_transfers.hubs);
        let hubs_only = Nav::from_permissions(|p| p == "hubs:read");
        assert!(hubs_only.hubs && !hubs_only.fleet);
        assert_eq!(Nav::from_permissions(|_| false), Nav::default());
    }
}
