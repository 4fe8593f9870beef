//! The replay task: sends the queue to the cloud in `seq` order once it answers again, each row
//! with its idempotency key, its agent's credential and its agent's address, and settles each
//! row by the cloud's answer:
//!
//! - 2xx: applied; the row is deleted.
//! - 409: already applied (a verdict or cancel the cloud's state machine already took, decision
//!   0011); deleted.
//! - 408, 429, 5xx, or no answer within the upstream timeout: the cloud is not ready; the replay
//!   pauses with backoff and the row stays first in line (never dropped for the cloud's state).
//! - any other refusal: moved to the dead letter with the cloud's status and error code; a 401
//!   also evicts the token (a credential revoked while the hub was cut off).

use super::{dead_letter, send, Offline};
use crate::queue;
use crate::state::HubState;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const REPLAY_BATCH: usize = 64;

/// What the cloud's answer to a replayed row means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settle {
    /// Applied now or before: delete the row.
    Done,
    /// The cloud is not ready: stop and try again later.
    Pause,
    /// The cloud will not take it: keep it in the dead letter.
    Refused,
}

pub(super) fn settle(status: StatusCode) -> Settle {
    if status.is_success() || status == StatusCode::CONFLICT {
        Settle::Done
    } else if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Settle::Pause
    } else {
        Settle::Refused
    }
}

impl Offline {
    /// Sends queued rows until the queue is empty (`Ok`) or the cloud fails (`Err`).
    async fn drain(&self, state: &HubState) -> Result<(), ()> {
        loop {
            let rows = queue::oldest(&self.conn, &self.sealer, REPLAY_BATCH).map_err(|err| {
                tracing::error!(error = %err, "cannot read the offline queue");
            })?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in rows {
                let write = &row.write;
                let mut headers = HeaderMap::new();
                if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", write.token)) {
                    headers.insert(header::AUTHORIZATION, value);
                }
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                let answer = send(
                    state,
                    &write.route,
                    headers,
                    &write.idempotency_key,
                    Bytes::from(write.body.clone()),
                    write.client_cert.as_deref(),
                    row.client_addr,
                )
                .await;
                let (status, body) = match answer {
                    Ok((parts, body)) => (parts.status, body),
                    Err(err) => {
                        tracing::info!(error = %err, "replay paused: the cloud is unreachable");
                        return Err(());
                    }
                };
                let outcome = settle(status);
                if outcome == Settle::Pause {
                    tracing::info!(status = status.as_u16(), "replay paused by the cloud");
                    return Err(());
                }
                let token = Some(write.token.as_str()).filter(|t| !t.is_empty());
                self.observe(&write.route, token, status, &body);
                if outcome == Settle::Done {
                    if status == StatusCode::CONFLICT {
                        // A verdict or cancel the cloud already applied (an earlier send that
                        // broke off, a duplicate, a replay repeated after a crash).
                        tracing::info!(
                            seq = row.seq,
                            "queued write conflicts with the cloud's state (already applied?); \
                             dropped"
                        );
                    }
                    queue::delete(&self.conn, row.seq).map_err(|err| {
                        tracing::error!(error = %err, "cannot delete a replayed row");
                    })?;
                    self.queued_less(1);
                    continue;
                }
                let reason = if status == StatusCode::UNAUTHORIZED {
                    self.evict(&queue::hash_of(write));
                    dead_letter::REASON_CREDENTIAL
                } else {
                    dead_letter::REASON_REFUSED
                };
                let refusal = dead_letter::Refusal {
                    status: status.as_u16(),
                    code: dead_letter::error_code(&body),
                    reason,
                };
                tracing::warn!(
                    seq = row.seq,
                    status = refusal.status,
                    code = refusal.code.as_deref().unwrap_or(""),
                    reason,
                    "queued write refused by the cloud; moved to the dead letter"
                );
                self.bury(row.seq, &refusal).map_err(|err| {
                    tracing::error!(error = %err, "cannot move a refused row to the dead letter");
                })?;
            }
        }
    }

    pub(super) fn queued_less(&self, n: u64) {
        let _ = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                Some(q.saturating_sub(n))
            });
    }
}

/// Replays the queue whenever rows wait, backing off while the cloud stays away.
pub async fn replay(state: Arc<HubState>, offline: Arc<Offline>) {
    let mut delay = state.timings.backoff_initial;
    loop {
        if offline.queued() == 0 {
            // The timeout covers a wake-up lost to a race with the counter.
            let _ = tokio::time::timeout(Duration::from_secs(1), offline.wake.notified()).await;
            continue;
        }
        match offline.drain(&state).await {
            Ok(()) => delay = state.timings.backoff_initial,
            Err(()) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = offline.back.notified() => {}
                }
                delay = (delay * 2).min(state.timings.backoff_max);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_final_refusal_goes_to_the_dead_letter() {
        for (status, expected) in [
            (200, Settle::Done),
            (202, Settle::Done),
            (409, Settle::Done),
            (408, Settle::Pause),
            (429, Settle::Pause),
            (500, Settle::Pause),
            (503, Settle::Pause),
            (400, Settle::Refused),
            (401, Settle::Refused),
            (403, Settle::Refused),
            (404, Settle::Refused),
            (422, Settle::Refused),
            (302, Settle::Refused),
        ] {
            assert_eq!(
                settle(StatusCode::from_u16(status).unwrap()),
                expected,
                "{status}"
            );
        }
    }
}
