//! The site store's collector: the cloud expires and cancels transfers without telling hubs, so
//! the hub asks, now and then, which of the transfers it holds files for are still live
//! (`POST /api/v1/hubs/{hub_id}/site-transfers/live`, with its deploy key) and deletes the
//! rest. A transfer the cloud does not know, or knows as another site's, is not live either.
//! When the cloud cannot be asked, nothing is deleted.

use super::Site;
use crate::state::HubState;
use axum::body::Body;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use mftplus_types::routes;
use mftplus_types::transfers::site::{SiteTransfersLive, SiteTransfersQuery};
use std::collections::HashSet;
use std::sync::Arc;

/// What the cloud takes in one question.
const BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("the hub is not registered yet")]
    NotRegistered,
    #[error("the cloud did not answer: {0}")]
    Cloud(String),
    #[error("the cloud answered {0}")]
    Refused(StatusCode),
    #[error(transparent)]
    Site(#[from] super::files::SiteError),
}

/// Runs [`collect_once`] every `site_collect_every` until the task is aborted.
pub async fn run(state: Arc<HubState>, site: Arc<Site>) {
    loop {
        tokio::time::sleep(state.timings.site_collect_every).await;
        match collect_once(&state, &site).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "site store: removed ended transfers"),
            Err(err) => tracing::info!(error = %err, "site store collection skipped"),
        }
    }
}

/// Deletes the files of every held transfer the cloud no longer calls live; returns how many.
pub async fn collect_once(state: &HubState, site: &Site) -> Result<usize, CollectError> {
    let held = site.files.transfers().await?;
    let mut removed = 0;
    for batch in held.chunks(BATCH) {
        let live: HashSet<String> = ask(state, batch).await?.into_iter().collect();
        for transfer in batch.iter().filter(|t| !live.contains(*t)) {
            site.files.remove(transfer).await?;
            site.forget(transfer);
            removed += 1;
        }
    }
    Ok(removed)
}

async fn ask(state: &HubState, transfer_ids: &[String]) -> Result<Vec<String>, CollectError> {
    let hub_id = state
        .phone_home()
        .hub_id
        .ok_or(CollectError::NotRegistered)?;
    let (Some(cloud), Some(key)) = (&state.config.cloud_api_url, &state.config.registration_key)
    else {
        return Err(CollectError::NotRegistered);
    };
    let body = serde_json::to_vec(&SiteTransfersQuery {
        transfer_ids: transfer_ids.to_vec(),
    })
    .map_err(|e| CollectError::Cloud(e.to_string()))?;
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = format!(
        "{}{}",
        cloud.origin,
        routes::fill(routes::HUB_SITE_TRANSFERS_LIVE, "hub_id", &hub_id)
    )
    .parse()
    .map_err(|_| CollectError::Cloud("the hub id makes no valid URL".into()))?;
    let mut bearer = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
        .map_err(|_| CollectError::NotRegistered)?;
    bearer.set_sensitive(true);
    let headers = request.headers_mut();
    headers.insert(header::AUTHORIZATION, bearer);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let answer = tokio::time::timeout(
        state.timings.cloud_call_timeout,
        state.client.request(request),
    )
    .await
    .map_err(|_| CollectError::Cloud("timed out".into()))?
    .map_err(|e| CollectError::Cloud(crate::error::describe(&e)))?;
    if answer.status() != StatusCode::OK {
        return Err(CollectError::Refused(answer.status()));
    }
    let body = answer
        .into_body()
        .collect()
        .await
        .map_err(|e| CollectError::Cloud(e.to_string()))?
        .to_bytes();
    let live: SiteTransfersLive =
        serde_json::from_slice(&body).map_err(|e| CollectError::Cloud(e.to_string()))?;
    Ok(live.live)
}
