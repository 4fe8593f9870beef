//! Phone-home protocol v1, the hub's side: register (with exponential backoff), heartbeat at the
//! cloud's interval, re-validate every `PHONE_HOME_INTERVAL_HOURS`. A 401 on any call means the
//! deploy key was revoked or is unknown: the hub records the refusal (the proxy then answers
//! 503 `hub_not_registered`) and keeps asking, slowly, in case an operator fixes it cloud-side.
//!
//! The wire structs are the shared ones in `mftplus_types::hubs`; they ignore unknown fields,
//! so a newer cloud can add some within protocol v1.

use crate::state::{platform, HubState, Refusal};
use axum::body::Body;
use http_body_util::{BodyExt, Limited};
use mftplus_types::hubs::{
    HubHeartbeatRequest, HubHeartbeatResponse, HubRegisterRequest, HubRegisterResponse,
};
use rand::Rng;
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub use mftplus_types::hubs::PROTOCOL_VERSION;
/// Phone-home answers are small; anything bigger is not the cloud.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// How a phone-home call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// 401: the deploy key is revoked (`token_revoked`) or unknown.
    #[error("the cloud refused the registration key ({code})")]
    Refused { code: String },
    /// 403/404 on a heartbeat or validate: the cloud no longer knows this hub under this key.
    #[error("the cloud does not know this hub ({status})")]
    UnknownHub { status: u16 },
    #[error("the cloud answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("cannot reach the cloud: {0}")]
    Transport(String),
    #[error("the cloud did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected answer from the cloud: {0}")]
    Decode(String),
}

impl CallError {
    fn refusal(&self) -> Option<Refusal> {
        match self {
            CallError::Refused { code } if code == "token_revoked" => Some(Refusal::Revoked),
            CallError::Refused { .. } => Some(Refusal::Refused),
            _ => None,
        }
    }
}

/// Registration, heartbeats and re-validation until the task is dropped.
pub async fn run(state: Arc<HubState>) {
    let say = |line: String| state.announcer.say(&line);
    let missing = state.config.missing();
    if !missing.is_empty() {
        for issue in missing {
            say(format!("[PhoneHome] Not registering: {issue}"));
        }
        return;
    }
    say("[PhoneHome] Registering with cloud...".into());
    loop {
        let registered = register_until_accepted(&state).await;
        say(format!(
            "[PhoneHome] Registered successfully — hubId: {}",
            registered.hub_id
        ));
        if let Some(warning) = &registered.warning {
            say(format!("[PhoneHome] Cloud warning: {warning}"));
        }
        say(format!(
            "[PhoneHome] Periodic re-validation every {}",
            hours_label(state.timings.revalidate_every)
        ));
        stay_registered(&state, registered).await;
        say("[PhoneHome] Registering with cloud...".into());
    }
}

fn hours_label(every: Duration) -> String {
    let secs = every.as_secs();
    if secs >= 3600 && secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else {
        format!("{:.1}s", every.as_secs_f64())
    }
}

/// Retries with exponential backoff and jitter until the cloud answers 200. A refusal is
/// recorded and retried at the maximum delay: only an operator can fix it.
async fn register_until_accepted(state: &HubState) -> HubRegisterResponse {
    let mut delay = state.timings.backoff_initial;
    loop {
        let body = register_body(state);
        match call::<_, HubRegisterResponse>(state, "v1/hubs/register", &body, Auth::DeployKey)
            .await
        {
            Ok(answer) => {
                let now = chrono::Utc::now();
                state.update_phone_home(|s| {
                    s.registered = true;
                    s.hub_id = Some(answer.hub_id.clone());
                    s.last_registered = Some(now);
                    s.validation_error = None;
                    s.refused = None;
                    s.license_mode = Some(answer.license_mode.clone());
                    s.warning = answer.warning.clone();
                });
                return answer;
            }
            Err(err) => {
                let refusal = err.refusal();
                state.update_phone_home(|s| {
                    s.registered = false;
                    s.validation_error = Some(err.to_string());
                    if refusal.is_some() {
                        s.refused = refusal;
                    }
                });
                let wait = match refusal {
                    Some(_) => state.timings.backoff_max,
                    None => jittered(delay).min(state.timings.backoff_max),
                };
                state.announcer.say(&format!(
                    "[PhoneHome] Registration failed: {err} — retrying in {:.3}s",
                    wait.as_secs_f64()
                ));
                tracing::warn!(error = %err, retry_in = ?wait, "hub registration failed");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(state.timings.backoff_max);
            }
        }
    }
}

/// Certificates are asked for only over HTTPS (they prove nothing over plain HTTP).
fn uses_certificates(state: &HubState) -> bool {
    state
        .config
        .cloud_api_url
        .as_ref()
        .is_some_and(|url| url.base.starts_with("https://"))
}

/// ±20 % so a fleet of hubs restarted together does not knock on the cloud in lockstep.
fn jittered(delay: Duration) -> Duration {
    let factor = rand::thread_rng().gen_range(0.8..1.2);
    delay.mul_f64(factor)
}

/// Heartbeats and re-validations; returns when the hub must register again.
async fn stay_registered(state: &HubState, registered: HubRegisterResponse) {
    let mut hub_id = registered.hub_id;
    let mut heartbeat_every = heartbeat_interval(state, registered.heartbeat_interval_seconds);
    let mut next_heartbeat = Instant::now() + heartbeat_every;
    let mut next_validate = Instant::now() + state.timings.revalidate_every;
    let mut certificate = crate::certificate::Keeper::load(state);
    loop {
        let mut wake = next_heartbeat.min(next_validate);
        if uses_certificates(state) {
            // Renewal has its own time; a long heartbeat interval must not make it late.
            wake = wake.min(certificate.look(state, &hub_id).await);
        }
        tokio::time::sleep_until(wake).await;
        let now = Instant::now();
        if now < next_heartbeat.min(next_validate) {
            continue;
        }
        if now >= next_validate {
            let path = format!("v1/hubs/{hub_id}/validate");
            match call::<_, HubRegisterResponse>(
                state,
                &path,
                &register_body(state),
                Auth::Certificate,
            )
            .await
            {
                Ok(answer) => {
                    let at = chrono::Utc::now();
                    state.update_phone_home(|s| {
                        s.last_validated = Some(at);
                        s.validation_error = None;
                        s.hub_id = Some(answer.hub_id.clone());
                        s.license_mode = Some(answer.license_mode.clone());
                        s.warning = answer.warning.clone();
                    });
                    hub_id = answer.hub_id;
                    heartbeat_every = heartbeat_interval(state, answer.heartbeat_interval_seconds);
                    next_validate = now + state.timings.revalidate_every;
                }
                Err(err) => {
                    if lost_registration(state, &err) {
                        return;
                    }
                    state.update_phone_home(|s| s.validation_error = Some(err.to_string()));
                    tracing::warn!(error = %err, "hub re-validation failed");
                    next_validate = now
                        + state
                            .timings
                            .backoff_max
                            .min(state.timings.revalidate_every);
                }
            }
        }
        if now >= next_heartbeat {
            let issues = crate::diagnose::local_issues(state);
            let body = HubHeartbeatRequest {
                hub_version: state.config.hub_version.clone(),
                uptime_seconds: state.uptime().as_secs(),
                healthy: issues.is_empty(),
                issues,
            };
            let path = format!("v1/hubs/{hub_id}/heartbeat");
            match call::<_, HubHeartbeatResponse>(state, &path, &body, Auth::Certificate).await {
                Ok(answer) => {
                    let at = chrono::Utc::now();
                    state.update_phone_home(|s| s.last_heartbeat = Some(at));
                    // The cloud answers again: queued writes need not wait out their backoff.
                    if let Some(offline) = &state.offline {
                        offline.cloud_is_back();
                    }
                    heartbeat_every = heartbeat_interval(state, answer.heartbeat_interval_seconds);
                }
                Err(err) => {
                    if lost_registration(state, &err) {
                        return;
                    }
                    tracing::warn!(error = %err, "hub heartbeat failed");
                }
            }
            next_heartbeat = Instant::now() + heartbeat_every;
        }
    }
}

/// A 401 (key refused) or 403/404 (hub unknown under this key) ends the registration.
fn lost_registration(state: &HubState, err: &CallError) -> bool {
    let refusal = err.refusal();
    if refusal.is_none() && !matches!(err, CallError::UnknownHub { .. }) {
        return false;
    }
    state.update_phone_home(|s| {
        s.registered = false;
        s.validation_error = Some(err.to_string());
        s.refused = refusal;
    });
    match refusal {
        Some(r) => state.announcer.say(&format!("[PhoneHome] {}", r.issue())),
        None => state
            .announcer
            .say("[PhoneHome] The cloud no longer knows this hub; registering again"),
    }
    tracing::warn!(error = %err, "hub registration lost");
    true
}

fn heartbeat_interval(state: &HubState, cloud_secs: u64) -> Duration {
    state
        .timings
        .heartbeat_every
        .unwrap_or(Duration::from_secs(cloud_secs.max(1)))
}

fn register_body(state: &HubState) -> HubRegisterRequest {
    HubRegisterRequest {
        protocol: PROTOCOL_VERSION,
        hub_version: state.config.hub_version.clone(),
        hostname: state.hostname.clone(),
        platform: platform().into(),
        license_key: state
            .config
            .license_key
            .as_ref()
            .map(|k| k.expose().to_string()),
    }
}

/// How a phone-home call proves the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The deploy key, as `Authorization: Bearer` (registration, the first certificate).
    DeployKey,
    /// The hub's certificate over mutual TLS while it holds a live one the cloud takes; the
    /// deploy key otherwise.
    Certificate,
}

/// One authenticated JSON POST to `${CLOUD_API_URL}/{path}`.
pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
    state: &HubState,
    path: &str,
    body: &B,
    auth: Auth,
) -> Result<T, CallError> {
    let by_certificate = auth == Auth::Certificate
        && state.identity.is_set()
        && !state
            .certificate_refused
            .load(std::sync::atomic::Ordering::Relaxed);
    if !by_certificate {
        return exchange(state, path, body, true).await;
    }
    match exchange(state, path, body, false).await {
        // The cloud saw no certificate at all: it does not ask for client certificates.
        Err(CallError::Refused { code }) if code == "unauthenticated" => {
            state
                .certificate_refused
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                "the cloud did not take the hub certificate (does it verify client \
                 certificates?); phone-home uses the deploy key"
            );
            exchange(state, path, body, true).await
        }
        // The certificate itself was refused (lapsed, revoked, unknown), at the handshake or
        // after it: this call goes with the key, and the hub stops presenting the certificate,
        // so its next look asks for a new one with the deploy key.
        Err(CallError::Refused { code }) if code.starts_with("certificate_") => {
            state.identity.clear();
            tracing::warn!(
                code,
                "the cloud refused the hub certificate; asking for a new one"
            );
            exchange(state, path, body, true).await
        }
        Err(CallError::Transport(why)) if why.contains("alert") => {
            state.identity.clear();
            tracing::warn!("the cloud refused the hub certificate at the handshake ({why})");
            exchange(state, path, body, true).await
        }
        other => other,
    }
}

async fn exchange<B: Serialize, T: DeserializeOwned>(
    state: &HubState,
    path: &str,
    body: &B,
    with_key: bool,
) -> Result<T, CallError> {
    let (Some(url), Some(key)) = (&state.config.cloud_api_url, &state.config.registration_key)
    else {
        return Err(CallError::Transport("not configured".into()));
    };
    let json = serde_json::to_vec(body).map_err(|e| CallError::Decode(e.to_string()))?;
    let mut request = http::Request::post(url.api(path))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json");
    if with_key {
        request = request.header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", key.expose()),
        );
    }
    let request = request
        .body(Body::from(json))
        .map_err(|e| CallError::Transport(e.to_string()))?;
    // Only phone-home's own client presents the hub certificate (`certificate.rs`).
    let client = if with_key {
        &state.client
    } else {
        &state.phone_home_client
    };
    let limit = state.timings.cloud_call_timeout;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| CallError::Transport(crate::error::describe(&e)))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?
            .to_bytes();
        Ok::<_, CallError>((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| CallError::Timeout(limit))??;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| CallError::Decode(e.to_string()));
    }
    let error = serde_json::from_slice::<mftplus_types::error::ApiErrorBody>(&bytes).ok();
    let code = error.as_ref().map(|e| e.error.code.clone());
    if status.as_u16() == 401 {
        if let Some(error) = &error {
            tracing::warn!(path, code = %error.error.code, "the cloud refused the call: {}", error.error.message);
        }
    }
    match status.as_u16() {
        401 => Err(CallError::Refused {
            code: code.unwrap_or_else(|| "unauthenticated".into()),
        }),
        403 | 404 if path != "v1/hubs/register" => Err(CallError::UnknownHub {
            status: status.as_u16(),
        }),
        other => Err(CallError::Status {
            status: other,
            message: error
                .map(|e| e.error.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_fields_a_newer_cloud_added_still_parse() {
        let registered: HubRegisterResponse = serde_json::from_value(serde_json::json!({
            "hub_id": "hub_1", "heartbeat_interval_seconds": 60, "license_mode": "evaluation",
            "latest_version": "0.2.0", "versions_behind": 0, "warning": null,
            "site_features": ["later"],
        }))
        .unwrap();
        assert_eq!(registered.hub_id, "hub_1");
        let beat: HubHeartbeatResponse = serde_json::from_value(serde_json::json!({
            "status": "ok", "heartbeat_interval_seconds": 30, "next": {"anything": 1},
        }))
        .unwrap();
        assert_eq!(beat.heartbeat_interval_seconds, 30);
    }
}
