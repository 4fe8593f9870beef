//! Background work of the cloud: flushing API-key last-use stamps, revoking inactive keys,
//! expiring transfers, removing leftovers of chunk writes cut short by a crash, and pruning
//! expired tokens and audit entries past retention. Each job is idempotent, so running
//! it on several replicas at once is harmless.

use crate::audit::AuditEvent;
use crate::state::AppState;
use serde_json::json;
use std::time::Duration;

const FLUSH_EVERY: Duration = Duration::from_secs(15);
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);
/// Temp files of chunk writes older than this are leftovers of a crash: no upload streams one
/// chunk for a day (64 MiB at 1 KiB/s still finishes within 19 hours).
const ABANDONED_WRITE_AGE: Duration = Duration::from_secs(86_400);

pub async fn run(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if let Err(err) = state.flush_key_uses().await {
                    tracing::warn!(error = %err, "flushing API key use stamps failed");
                }
            }
            _ = housekeeping.tick() => housekeep(&state).await,
            _ = shutdown.changed() => {
                let _ = state.flush_key_uses().await;
                return;
            }
        }
    }
}

/// Expired transfers lose their payload first, then their rows, so a row never points at a
/// blob that is gone while the transfer could still be served. Safe to run on several replicas:
/// every step is idempotent.
async fn sweep_transfers(state: &AppState, now: i64) {
    // Lapsed share-link tickets (decision 0023) are worthless; a chunk fetch checks the expiry.
    if let Err(err) = state.store.prune_link_tickets(now).await {
        tracing::warn!(error = %err, "pruning lapsed link tickets failed");
    }
    let expired = match state.store.expire_transfers(now).await {
        Ok(ids) => ids,
        Err(err) => {
            tracing::warn!(error = %err, "expiring transfers failed");
            return;
        }
    };
    for id in expired {
        let Ok(tid) = mftplus_blob::TransferId::new(id.clone()) else {
            continue;
        };
        if let Err(err) = state.blobs.delete_transfer(&tid).await {
            tracing::warn!(transfer = %id, error = %err, "deleting an expired payload failed; retried next pass");
            continue;
        }
        match state.store.delete_transfer(&id).await {
            Ok(()) => {
                state
                    .audit(
                        AuditEvent::new("transfer_expired")
                            .actor("system")
                            .target(&id),
                    )
                    .await
            }
            Err(err) => {
                tracing::warn!(transfer = %id, error = %err, "deleting an expired transfer failed")
            }
        }
    }
}

/// One pass of the slow jobs; public so tests drive it with a moved clock.
pub async fn housekeep(state: &AppState) {
    let config = &state.config.config;
    let now = state.clock.now_ms();
    if config.api_keys.max_inactive_days > 0 {
        let cutoff = now - config.api_keys.max_inactive_days as i64 * 86_400_000;
        let _ = state.flush_key_uses().await;
        match state.store.revoke_inactive_api_keys(cutoff, now).await {
            Ok(revoked) => {
                for key in revoked {
                    state.forget_api_key(&key.key_hash);
                    state
                        .audit(
                            AuditEvent::new("apikey_auto_revoked")
                                .actor("system")
                                .target(&key.id)
                                .details(json!({"name": key.name, "reason": "inactive", "max_inactive_days": config.api_keys.max_inactive_days})),
                        )
                        .await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "revoking inactive API keys failed"),
        }
    }
    sweep_transfers(state, now).await;
    match state.blobs.sweep_incomplete(ABANDONED_WRITE_AGE).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "removed leftovers of interrupted chunk writes"),
        Err(err) => tracing::warn!(error = %err, "sweeping interrupted chunk writes failed"),
    }
    if let Err(err) = state.store.prune_tokens(now).await {
        tracing::warn!(error = %err, "pruning expired tokens failed");
    }
    let retention_ms = config.audit.retention_days.max(90) as i64 * 86_400_000;
    match state.store.prune_audit(now - retention_ms).await {
        Ok(0) => {}
        Ok(pruned) => {
            state
                .audit(AuditEvent::new("audit_pruned").actor("system").details(
                    json!({"entries": pruned, "retention_days": config.audit.retention_days}),
                ))
                .await
        }
        Err(err) => tracing::warn!(error = %err, "pruning the audit log failed"),
    }
}
