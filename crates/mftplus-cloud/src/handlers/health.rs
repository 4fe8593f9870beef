//! Health, key discovery, status and the fallbacks.

use crate::auth::{Caller, CallerKind};
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::api::{DatabaseHealth, Health, Jwks, Principal, Status};
use mftplus_types::ErrorCode;

/// How long a database answer serves `/api/v1/health`: load balancers probe often and an
/// attacker can too, so the probe costs the database at most one ping a second per replica
/// (a failing database is reported within that second).
pub const DATABASE_HEALTH_TTL: std::time::Duration = std::time::Duration::from_secs(1);

async fn database(state: &AppState) -> DatabaseHealth {
    if let Some((at, health)) = &*state
        .database_health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
    {
        if at.elapsed() < DATABASE_HEALTH_TTL {
            return health.clone();
        }
    }
    let health = ping(state).await;
    *state
        .database_health
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), health.clone()));
    health
}

async fn ping(state: &AppState) -> DatabaseHealth {
    let status = match state.store.ping().await {
        Ok(()) => "ok",
        Err(err) => {
            tracing::warn!(error = %err, "database ping failed");
            "error"
        }
    };
    DatabaseHealth {
        backend: state.store.backend().into(),
        status: status.into(),
    }
}

pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: mftplus_types::VERSION.into(),
        uptime: state.uptime_secs(),
        database: None,
    })
}

/// Includes the database: `degraded` with 503 when it does not answer, so a load balancer
/// takes the replica out.
pub async fn api_health(State(state): State<AppState>) -> (http::StatusCode, Json<Health>) {
    let database = database(&state).await;
    let ok = database.status == "ok";
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.into(),
        version: mftplus_types::VERSION.into(),
        uptime: state.uptime_secs(),
        database: Some(database),
    };
    let status = if ok {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub async fn jwks(State(state): State<AppState>) -> Json<Jwks> {
    Json(Jwks {
        keys: state.jwt.current().jwks().to_vec(),
    })
}

fn principal(state: &AppState, caller: &Caller) -> Principal {
    let (api_key_id, token_id) = match &caller.kind {
        CallerKind::ApiKey { id, .. } => (Some(id.clone()), None),
        CallerKind::Jwt { jti, .. } | CallerKind::Session { jti, .. } => (None, Some(jti.clone())),
    };
    Principal {
        kind: if api_key_id.is_some() {
            "api_key"
        } else {
            "user"
        }
        .into(),
        user_id: caller.user_id.clone(),
        email: caller.email.clone(),
        permissions: state.rbac.permissions(&caller.role),
        role: caller.role.clone(),
        api_key_id,
        token_id,
    }
}

/// Who the credential belongs to and what it may do; no database work.
pub async fn whoami(State(state): State<AppState>, caller: Caller) -> Json<Principal> {
    Json(principal(&state, &caller))
}

pub async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Status>> {
    let now = state.clock.now_ms();
    let warning_ms = state.config.config.api_keys.warning_days as i64 * 86_400_000;
    let mut warnings = Vec::new();
    for key in state.store.list_api_keys(Some(&caller.user_id)).await? {
        if key.revoked_at_ms.is_some() {
            continue;
        }
        if let Some(expires) = key
            .expires_at_ms
            .filter(|at| *at > now && at - now <= warning_ms)
        {
            let days = (expires - now) as f64 / 86_400_000.0;
            warnings.push(format!(
                "API key {:?} ({}) expires in {:.1} days ({}); rotate it with `mftctl apikeys rotate {}`",
                key.name, key.prefix, days, rfc3339(expires), key.id
            ));
        }
    }
    Ok(Json(Status {
        version: mftplus_types::VERSION.into(),
        server_time: rfc3339(now),
        uptime: state.uptime_secs(),
        mode: state.config.config.mode.as_str().into(),
        database: database(&state).await,
        principal: principal(&state, &caller),
        warnings,
    }))
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such endpoint: the API is under /api/v1/ (for example /api/v1/transfers), the \
         dashboard at /",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this endpoint",
    )
}
