//! Server-sent events that tell a page its data changed (`event: changed`); the page then
//! re-reads its fragment (`assets/app.js`). Each stream looks at its data once a second — one
//! bounded query per open page, the same on every replica — and ends after a few minutes, when
//! the browser reconnects (and a session that ended meanwhile is refused).

use crate::auth::Caller;
use crate::state::AppState;
use crate::web::live_permits::LivePermit;
use crate::web::session;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderValue};
use std::collections::hash_map::DefaultHasher;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::time::Duration;

const LOOK_EVERY: Duration = Duration::from_secs(1);
/// The least time between two looks of one stream: a burst of writes (chunks arriving, a
/// fleet reporting) costs each open page at most ten bounded queries a second, and a change
/// reaches the page within about this long (bench/dashboard.sh measures it).
const LOOK_AT_MOST_EVERY: Duration = Duration::from_millis(100);
const STREAM_FOR: Duration = Duration::from_secs(300);

/// `GET /live/hubs`: changes of the hubs page (statuses, versions, last contact, keys).
pub async fn hubs(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> Result<Response, crate::web::WebError> {
    let permit = state.live_streams.admit(&caller.user_id)?;
    Ok(stream(state, permit, caller, |state| async move {
        let hubs = crate::app::deploy_keys::hubs(&state).await.ok()?;
        let keys = crate::app::deploy_keys::keys(&state).await.ok()?;
        let mut hasher = DefaultHasher::new();
        for hub in &hubs {
            (
                &hub.hub_id,
                &hub.status,
                &hub.hub_version,
                &hub.last_seen_at,
            )
                .hash(&mut hasher);
        }
        for key in &keys {
            (&key.id, &key.status, key.hubs).hash(&mut hasher);
        }
        Some(hasher.finish())
    }))
}

/// `GET /live/hosts`: changes of the page of hosts the browser shows (liveness, reports,
/// generations, hostnames): the same bounded keyset query as the page, with its filters and
/// order, never the whole fleet. A view the page refuses (400) is refused here too.
pub async fn hosts(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Query(view): Query<crate::web::pages::hosts::View>,
) -> Result<Response, crate::web::WebError> {
    let permit = state.live_streams.admit(&caller.user_id)?;
    let listing = view.listing()?;
    Ok(stream(state, permit, caller, move |state| {
        let listing = listing.clone();
        async move {
            let listing = crate::app::fleet::hosts_page(&state, &listing).await.ok()?;
            let mut hasher = DefaultHasher::new();
            for host in &listing.hosts {
                (
                    &host.host_id,
                    &host.hostname,
                    &host.liveness,
                    &host.last_report_at,
                    &host.convergence,
                    host.applied_generation,
                    host.desired_generation,
                    &host.agent_version,
                    host.pending_signature.len(),
                )
                    .hash(&mut hasher);
            }
            Some(hasher.finish())
        }
    }))
}

/// `GET /live/customers`: changes of the page of customers the browser shows (status, host
/// and op counts): the page's own two bounded queries (`pages::customers::Shown`).
pub async fn customers(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Query(view): Query<crate::web::pages::customers::View>,
) -> Result<Response, crate::web::WebError> {
    let permit = state.live_streams.admit(&caller.user_id)?;
    let limit = view.limit()?;
    Ok(stream(state, permit, caller, move |state| {
        let after = view.after.clone();
        async move {
            let shown = crate::web::pages::customers::Shown::read(&state, &after, limit)
                .await
                .ok()?;
            Some(shown.fingerprint())
        }
    }))
}

/// `GET /live/ops`: changes of the operations page with the same filters (an op's status or
/// a new op). An unknown status filter is the page's 400, here as there.
pub async fn ops(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Query(view): Query<crate::web::pages::ops::View>,
) -> Result<Response, crate::web::WebError> {
    let permit = state.live_streams.admit(&caller.user_id)?;
    let listing = crate::web::pages::ops::listing(&view)?;
    Ok(stream(state, permit, caller, move |state| {
        let listing = listing.clone();
        async move {
            let ops = crate::app::fleet::ops(&state, &listing).await.ok()?;
            let mut hasher = DefaultHasher::new();
            for op in &ops {
                (&op.op_id, &op.status, &op.signed_at, &op.finished_at).hash(&mut hasher);
            }
            Some(hasher.finish())
        }
    }))
}

/// `GET /live/events`: a new event for the events page's filters (the newest matching id, a
/// one-row query). Events are appended, never changed, so the newest id is the whole signal.
pub async fn events(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Query(view): Query<crate::web::pages::events::View>,
) -> Result<Response, crate::web::WebError> {
    let permit = state.live_streams.admit(&caller.user_id)?;
    let timeline = crate::web::pages::events::timeline(&view)?;
    Ok(stream(state, permit, caller, move |state| {
        let timeline = timeline.clone();
        async move {
            let newest = crate::app::events::newest(&state, &timeline).await.ok()?;
            Some(newest as u64)
        }
    }))
}

/// `GET /live/transfers`: changes of the page of transfers the browser shows (statuses,
/// stored chunks and bytes, downloads), or of one transfer's page (`?transfer=ID`), as the
/// caller may see them: the page's own bounded queries (`pages::transfers::Watched`).
pub async fn transfers(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    scope: crate::middleware::Scope,
    Query(view): Query<crate::web::pages::transfers::View>,
) -> Result<Response, crate::web::WebError> {
    let permit = state.live_streams.admit(&caller.user_id)?;
    let watched =
        crate::web::pages::transfers::Watched::start(&state, caller.clone(), scope, &view).await?;
    Ok(stream(state, permit, caller, move |state| {
        let watched = watched.clone();
        async move { watched.fingerprint(&state).await }
    }))
}

/// The response of one live stream; `permit` (`web::live_permits`) is held by its body and
/// given back when the browser goes away or the stream ends.
fn stream<F, Fut>(state: AppState, permit: LivePermit, viewer: Caller, fingerprint: F) -> Response
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<u64>> + Send + 'static,
{
    let events = async_stream(state, viewer, fingerprint).map(move |event| {
        let _held = &permit;
        event
    });
    let mut response = Body::from_stream(events).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Until the next look: a write on this replica (after the least spacing) or the tick.
/// Answers whether a write woke it.
async fn next_look(writes: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    let looked = tokio::time::Instant::now();
    tokio::select! {
        _ = tokio::time::sleep(LOOK_EVERY) => false,
        changed = writes.changed() => {
            if changed.is_ok() {
                tokio::time::sleep_until(looked + LOOK_AT_MOST_EVERY).await;
                true
            } else {
                tokio::time::sleep(LOOK_EVERY).await;
                false
            }
        }
    }
}

/// Looks between two checks that the viewer's session still stands, when no write on this
/// replica prompted one (a sign-out, a revocation or a role change here is one).
const SESSION_CHECK_EVERY_LOOKS: u64 = 30;

/// One open stream between two events.
struct Watch<F> {
    state: AppState,
    viewer: Caller,
    fingerprint: F,
    last: Option<u64>,
    looks: u64,
    writes: tokio::sync::watch::Receiver<u64>,
}

/// The event stream: a `changed` event at the first look (whatever changed between the page's
/// rendering and the stream's start is not lost) and whenever the fingerprint moves, and a
/// comment every 15 s to keep proxies from closing a quiet stream. It ends after
/// [`STREAM_FOR`], or as soon as the viewer's session no longer stands (signed out, revoked,
/// expired, or the role changed): the browser's reconnection then meets the guard again.
fn async_stream<F, Fut>(
    state: AppState,
    viewer: Caller,
    fingerprint: F,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<u64>> + Send + 'static,
{
    let started = tokio::time::Instant::now();
    let writes = state.writes.subscribe();
    let watch = Watch {
        state,
        viewer,
        fingerprint,
        last: None,
        looks: 0,
        writes,
    };
    futures_util::stream::unfold(watch, move |mut watch| async move {
        loop {
            if started.elapsed() >= STREAM_FOR {
                return None;
            }
            if watch.last.is_some() {
                let woken = next_look(&mut watch.writes).await;
                let due = watch.looks % SESSION_CHECK_EVERY_LOOKS == 0;
                if (woken || due) && !session::still_stands(&watch.state, &watch.viewer).await {
                    return None;
                }
            }
            watch.looks += 1;
            let now = (watch.fingerprint)(watch.state.clone()).await;
            let first = watch.last.is_none();
            let changed = now.is_some() && now != watch.last;
            if now.is_some() || first {
                watch.last = Some(now.unwrap_or(0));
            }
            if changed {
                let event = format!("event: changed\ndata: {}\n\n", watch.looks);
                return Some((Ok(Bytes::from(event)), watch));
            }
            if watch.looks % 15 == 0 {
                return Some((Ok(Bytes::from_static(b": still here\n\n")), watch));
            }
        }
    })
}
