//! Recovery mode of a host, for the API (`POST`/`DELETE /api/v1/hosts/{id}/recovery`) and the
//! dashboard's host page alike: while armed, a replacement box may re-enroll as the host with
//! the customer's retrieval password and take over its identity (SPEC §3). Arming and
//! disarming are audited and put on the host's timeline as warnings.

use crate::audit::AuditEvent;
use crate::error::ApiResult;
use crate::handlers::fleet::host_event;
use crate::state::AppState;
use mftplus_store::HostRow;
use mftplus_types::fleet::RecoveryState;
use serde_json::{json, Value};

/// Recovery mode lasts at least a minute and at most four hours (SPEC §3).
pub const TTL_SECS: std::ops::RangeInclusive<u64> = 60..=4 * 3600;

/// Arms recovery for `ttl_seconds`, clamped to [`TTL_SECS`].
pub async fn arm(
    state: &AppState,
    actor: &str,
    ip: &str,
    host_id: &str,
    ttl_seconds: u64,
) -> ApiResult<RecoveryState> {
    let ttl = ttl_seconds.clamp(*TTL_SECS.start(), *TTL_SECS.end());
    let until = state.clock.now_ms() + ttl as i64 * 1000;
    let host = state.store.set_recovery_mode(host_id, Some(until)).await?;
    record(
        state,
        actor,
        ip,
        &host,
        "recovery_armed",
        json!({"ttl_seconds": ttl}),
    )
    .await?;
    Ok(RecoveryState {
        host_id: host.id,
        recovery_mode_until: Some(crate::clock::rfc3339(until)),
    })
}

pub async fn disarm(
    state: &AppState,
    actor: &str,
    ip: &str,
    host_id: &str,
) -> ApiResult<RecoveryState> {
    let host = state.store.set_recovery_mode(host_id, None).await?;
    record(state, actor, ip, &host, "recovery_disarmed", json!({})).await?;
    Ok(RecoveryState {
        host_id: host.id,
        recovery_mode_until: None,
    })
}

async fn record(
    state: &AppState,
    actor: &str,
    ip: &str,
    host: &HostRow,
    kind: &str,
    details: Value,
) -> ApiResult<()> {
    state
        .audit(
            AuditEvent::new(kind)
                .actor(actor)
                .target(&host.id)
                .ip(ip)
                .details(details.clone()),
        )
        .await;
    let mut details = details;
    details["by"] = json!(actor);
    let event = host_event(state, kind, "warning", host, None, details);
    state.store.append_events(&[event]).await?;
    Ok(())
}
