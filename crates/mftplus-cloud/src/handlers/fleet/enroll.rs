//! Identity of boxes: agent-first enrollment with the customer's retrieval password, guest
//! bootstrap by the agent, the generated controller config, and disaster recovery (escrow,
//! recovery mode, re-enrollment that rotates the host key).

use super::{check_retrieval_password, desired_of, find_host, host_event};
use crate::audit::AuditEvent;
use crate::auth::reporter::{generate_key, Reporter};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mftplus_store::{NewGuest, NewHost, StoreError};
use mftplus_types::fleet::{
    ArmRecovery, DesiredState, EnrollRequest, EnrollResponse, EscrowUpload, GuestBootstrap,
    GuestBootstrapRequest, ReEnrollRequest, ReEnrollResponse, RecoveryState, RestoreDirective,
    GUEST_KEY_PREFIX, HOST_KEY_PREFIX,
};
use mftplus_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

pub async fn enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EnrollRequest>,
) -> ApiResult<(StatusCode, Json<EnrollResponse>)> {
    let customer =
        check_retrieval_password(&state, &headers, &body.customer_id, &ip, "enroll").await?;
    let hostname = short_text(&body.hostname, "hostname", 253)?;
    let agent_version = short_text(&body.agent_version, "agent_version", 64)?;
    let key = generate_key(HOST_KEY_PREFIX);
    let now = state.clock.now_ms();
    let desired = serde_json::to_string(&DesiredState::default()).map_err(ApiError::internal)?;
    let host = state
        .store
        .create_host(
            &NewHost {
                id: format!("h-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
                customer_id: customer.id.clone(),
                key_hash: mftplus_crypto::hash_api_key(&key),
                hostname,
                platform: body.platform.clone(),
                agent_version,
                desired_json: desired,
                enrolled_at_ms: now,
            },
            state.config.config.fleet.max_hosts_per_customer,
        )
        .await
        .map_err(|err| match err {
            StoreError::Conflict(what) if what == "host_limit" => ApiError::new(
                ErrorCode::Conflict,
                "this customer already has its host; a replacement box re-enrolls through recovery mode",
            ),
            other => other.into(),
        })?;
    record_identity(&state, &customer.id, &host, &ip, "host_enrolled", "info").await?;
    let poll_interval_seconds = state
        .fleet
        .poll_interval(&host.id, &state.config.config.fleet);
    Ok((
        StatusCode::CREATED,
        Json(EnrollResponse {
            host_id: host.id,
            customer_id: customer.id,
            host_key: key,
            operator_keys: state.fleet.operator_keys.clone(),
            poll_interval_seconds,
        }),
    ))
}

/// The agent mints a guest controller's identity; the key is shown once.
pub async fn mint_guest(
    State(state): State<AppState>,
    reporter: Reporter,
    ApiJson(body): ApiJson<GuestBootstrapRequest>,
) -> ApiResult<(StatusCode, Json<GuestBootstrap>)> {
    let guest_id = guest_id(&body.guest_id)?;
    let display_name = short_text(&body.display_name, "display_name", 200)?;
    let host = find_host(&state, reporter.host_id()).await?;
    let key = generate_key(GUEST_KEY_PREFIX);
    let guest = state
        .store
        .create_guest(&NewGuest {
            id: guest_id,
            customer_id: host.customer_id.clone(),
            host_id: host.id.clone(),
            key_hash: mftplus_crypto::hash_api_key(&key),
            display_name,
            created_at_ms: state.clock.now_ms(),
        })
        .await?;
    let event = host_event(
        &state,
        "guest_enrolled",
        "info",
        &host,
        Some(&guest.id),
        json!({"display_name": guest.display_name}),
    );
    state.store.append_events(&[event]).await?;
    Ok((
        StatusCode::CREATED,
        Json(GuestBootstrap {
            guest_id: guest.id,
            host_id: host.id,
            customer_id: host.customer_id,
            guest_key: key,
        }),
    ))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigQuery {
    /// `yaml` (default) or `json`.
    pub format: Option<String>,
}

/// The generated controller config: template deep-merged with the customer's overrides,
/// with every cloud-only secret removed.
pub async fn controller_config(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiPath(customer_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ConfigQuery>,
) -> ApiResult<Response> {
    let format = query.format.unwrap_or_else(|| "yaml".into());
    if format != "yaml" && format != "json" {
        return Err(ApiError::validation("format must be yaml or json"));
    }
    let customer = check_retrieval_password(&state, &headers, &customer_id, &ip, "config").await?;
    let cloud_url = state
        .config
        .config
        .fleet
        .public_url
        .clone()
        .unwrap_or_else(|| {
            let host = headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        });
    let template = match &state.fleet.controller_template {
        Some(template) => template.clone(),
        None => {
            mftplus_fleet::default_template(&customer.id, customer.domain.as_deref(), &cloud_url)
        }
    };
    let overrides: serde_json::Value =
        serde_json::from_str(&customer.config_json).map_err(ApiError::internal)?;
    let mut config = mftplus_fleet::generate_config(&template, &overrides);
    mftplus_fleet::strip_cloud_only(&mut config);
    state
        .audit(
            AuditEvent::new("controller_config_retrieved")
                .actor(&customer.id)
                .target(&customer.id)
                .ip(&ip),
        )
        .await;
    Ok(if format == "json" {
        Json(config).into_response()
    } else {
        (
            [(
                http::header::CONTENT_TYPE,
                "application/yaml; charset=utf-8",
            )],
            mftplus_fleet::render_yaml(&config),
        )
            .into_response()
    })
}

/// Stores the agent's DR record verbatim; the cloud cannot open the wrapped key.
pub async fn put_escrow(
    State(state): State<AppState>,
    reporter: Reporter,
    ApiJson(body): ApiJson<EscrowUpload>,
) -> ApiResult<StatusCode> {
    let namespace = short_text(&body.backup_namespace, "backup_namespace", 256)?;
    let fingerprint = short_text(&body.repository_fingerprint, "repository_fingerprint", 256)?;
    if body.wrapped_key.is_empty() || body.wrapped_key.len() > 16 * 1024 {
        return Err(ApiError::validation("wrapped_key must be 1–16384 bytes"));
    }
    let host = find_host(&state, reporter.host_id()).await?;
    state
        .store
        .put_escrow(
            &host.id,
            &namespace,
            &fingerprint,
            &body.wrapped_key,
            state.clock.now_ms(),
        )
        .await?;
    let event = host_event(
        &state,
        "escrow_stored",
        "info",
        &host,
        None,
        json!({"backup_namespace": namespace, "repository_fingerprint": fingerprint}),
    );
    state.store.append_events(&[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Recovery mode: the flow is `app::recovery`, shared with the dashboard's host page.
pub async fn arm_recovery(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    ApiJson(body): ApiJson<ArmRecovery>,
) -> ApiResult<Json<RecoveryState>> {
    let armed =
        crate::app::recovery::arm(&state, &caller.email, &ip, &host_id, body.ttl_seconds).await?;
    Ok(Json(armed))
}

pub async fn disarm_recovery(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
) -> ApiResult<Json<RecoveryState>> {
    let disarmed = crate::app::recovery::disarm(&state, &caller.email, &ip, &host_id).await?;
    Ok(Json(disarmed))
}

/// A replacement box takes over a lost host's identity: only while the operator has armed
/// recovery mode, and the old key stops working in the same transaction.
pub async fn re_enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiPath(host_id): ApiPath<String>,
    ApiJson(body): ApiJson<ReEnrollRequest>,
) -> ApiResult<Json<ReEnrollResponse>> {
    let hostname = short_text(&body.hostname, "hostname", 253)?;
    let agent_version = short_text(&body.agent_version, "agent_version", 64)?;
    // An unknown host is checked against no customer, which fails like a wrong password.
    let customer_id = state
        .store
        .get_host(&host_id)
        .await?
        .map(|host| host.customer_id)
        .unwrap_or_default();
    let customer =
        check_retrieval_password(&state, &headers, &customer_id, &ip, "re-enroll").await?;
    let key = generate_key(HOST_KEY_PREFIX);
    let host = state
        .store
        .rotate_host_key(
            &host_id,
            &mftplus_crypto::hash_api_key(&key),
            &hostname,
            &agent_version,
            state.clock.now_ms(),
        )
        .await
        .map_err(|err| match err {
            StoreError::Conflict(what) if what == "recovery_not_armed" => ApiError::new(
                ErrorCode::RecoveryNotArmed,
                "recovery mode is not armed for this host; an operator must arm it first",
            ),
            other => other.into(),
        })?;
    state.forget_reporters();
    // The lost box's transfer key goes with it (decision 0029): until the new box registers
    // its own, a sender is refused rather than encrypting to a key nobody may hold any more.
    state.store.delete_host_transfer_key(&host.id).await?;
    record_identity(
        &state,
        &customer.id,
        &host,
        &ip,
        "host_re_enrolled",
        "warning",
    )
    .await?;
    Ok(Json(ReEnrollResponse {
        host_id: host.id.clone(),
        customer_id: customer.id,
        host_key: key,
        operator_keys: state.fleet.operator_keys.clone(),
        restore: RestoreDirective {
            backup_namespace: host.backup_namespace.clone(),
            repository_fingerprint: host.repository_fingerprint.clone(),
            wrapped_key: host.escrow.clone(),
            generation: host.desired_generation as u64,
            desired_state: desired_of(&host)?,
        },
    }))
}

/// Audits an enrollment-type change of a box's identity and puts it on the timeline.
async fn record_identity(
    state: &AppState,
    customer_id: &str,
    host: &mftplus_store::HostRow,
    ip: &str,
    kind: &str,
    severity: &str,
) -> ApiResult<()> {
    let details = json!({"hostname": host.hostname, "agent_version": host.agent_version});
    state
        .audit(
            AuditEvent::new(kind)
                .actor(customer_id)
                .target(&host.id)
                .ip(ip)
                .details(details.clone()),
        )
        .await;
    let event = host_event(state, kind, severity, host, None, details);
    state.store.append_events(&[event]).await?;
    Ok(())
}

fn short_text(value: &str, what: &str, max: usize) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{what} must be 1–{max} printable characters"
        )));
    }
    Ok(value.to_string())
}

fn guest_id(id: &str) -> ApiResult<String> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(ApiError::validation(
            "guest_id must be 1–64 characters of A-Z, a-z, 0-9, -, _ and .",
        ))
    }
}
